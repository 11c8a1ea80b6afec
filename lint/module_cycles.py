"""An import-linter contract: no import cycle between the modules of a package.

import-linter's own `acyclic_siblings` compares packages (app.models with app.security as
wholes), where `app.security.scope` importing `app.models.base` and `app.models.org` importing
`app.security.principal` is a layering, not a cycle. This one looks at modules, counting every
import grimp finds — those inside functions too, which is where a cycle hides.
"""
from __future__ import annotations

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def cycles(graph: ImportGraph, modules: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(
                        graph.find_modules_directly_imported_by(target) & modules))))
                    break
                if target in on_stack:
                    low[module] = min(low[module], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


class AcyclicModulesContract(Contract):
    type_name = "acyclic_modules"

    containers = fields.SetField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        modules = set()
        for container in self.containers:
            modules |= {container} | graph.find_descendants(container)
        found = []
        for cycle in cycles(graph, modules):
            found.append([
                f"{d['importer']}:{d['line_number']} {d['line_contents']}"
                for module in cycle
                for target in sorted(graph.find_modules_directly_imported_by(module) & set(cycle))
                for d in graph.get_import_details(importer=module, imported=target)])
        return ContractCheck(kept=not found, metadata={"cycles": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for lines in check.metadata["cycles"]:
            output.print_error("Import cycle:", bold=True)
            for line in lines:
                output.print_error(f"  {line}")
            output.new_line()
