"""Views of the organisation tree, units, members and the data dictionary: declarations only."""
from flask import flash, redirect, url_for
from flask_appbuilder.actions import action as bulk_action
from flask_babel import lazy_gettext
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import DataRequired

from app import crypto, validators
from app.errors import DomainError
from app.imports import REGISTRY
from app.models.org import ID_NOT_REGISTRABLE, Dictionary, Member, Organization, Unit
from app.security.scope import current_principal, may_read, unscoped
from app.services import accounts
from app.services.intake import POSTER_TYPES
from app.tree_import import OrgTreeImporter
from app.views.base import EntityView, checked_by


class OrganizationView(EntityView):
    model = Organization
    list_columns = ["name", "type", "code", "parent", "secretary", "phone_masked", "active"]
    show_columns = ["name", "short_name", "type", "code", "parent", "secretary", "phone_shown",
                    "address", "grid_kind", "active", "created_on", "changed_on"]
    add_columns = edit_columns = ["parent", "type", "code", "name", "short_name", "secretary",
                                  "phone", "address", "grid_kind", "active"]
    search_columns = ["name", "code", "type", "parent", "secretary", "active"]
    order_columns = ["name", "code", "type"]
    base_order = ("path", "asc")
    # The tree by import: rows in any order, parents found in the file or one's subtree
    # (app/tree_import.py); 编码 optional.
    import_columns = ["name", "parent", "type", "code", "short_name", "secretary", "phone",
                      "address", "grid_kind"]
    import_examples = {"name": "第1网格党支部"}

    show_template = "org/organization_show.html"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        OrgTreeImporter(self)  # registers itself: the import page and `flask import` use it

    def _importer(self):
        return REGISTRY[self.class_permission_name]

    def _show(self, pk):
        widgets = super()._show(pk)
        node = self.datamodel.get(pk)
        # The QR poster of a community, grid or building: for those who manage the node.
        if node is not None and node.type in POSTER_TYPES and node.active and \
                self.appbuilder.sm.has_access("can_edit", self.class_permission_name):
            widgets["poster"] = url_for("IntakeView.poster", code=node.code)
        return widgets


class DictionaryView(EntityView):
    model = Dictionary
    list_columns = ["kind", "code", "label", "alias", "order", "active"]
    show_columns = add_columns = edit_columns = ["kind", "code", "label", "alias",
                                                 "need_categories", "order", "active"]
    search_columns = ["kind", "code", "label", "alias", "active"]
    order_columns = ["kind", "code", "label", "order"]
    base_order = ("order", "asc")


class UnitView(EntityView):
    model = Unit
    show_template = "cobuild/unit_show.html"  # + the co-building panel
    list_columns = ["name", "credit_code", "category", "community", "party_org_type",
                    "party_member_count", "leader_name", "status"]
    show_columns = ["name", "credit_code", "category", "community", "address", "party_org_name",
                    "party_org_type", "party_member_count", "leader_name", "leader_title",
                    "liaison_name", "contact_phone_shown", "status", "cancel_reason",
                    "cancelled_on", "created_on", "changed_on"]
    add_columns = edit_columns = [
        "name", "credit_code", "category", "community", "address", "party_org_name",
        "party_org_type", "party_member_count", "leader_name", "leader_title", "liaison_name",
        "contact_phone", "status", "cancel_reason", "cancelled_on"]
    search_columns = ["name", "credit_code", "category", "community", "party_org_type", "status"]
    order_columns = ["name", "credit_code", "party_member_count", "status"]
    base_order = ("name", "asc")
    validators_columns = {"credit_code": [checked_by(validators.normalize_credit_code)]}
    import_columns = ["name", "credit_code", "category", "community", "address", "party_org_name",
                      "party_org_type", "party_member_count", "leader_name", "leader_title",
                      "liaison_name", "contact_phone"]
    import_key = "credit_code"
    import_examples = {"name": "云溪区税务局", "credit_code": "91350100M000100Y43"}

    def import_key_of(self, value):
        try:
            return validators.normalize_credit_code(value)
        except ValueError:
            return value  # the row's own validation says what is wrong


class MemberView(EntityView):
    model = Member
    permission_of = {"open_accounts": "open_accounts"}
    show_template = "cobuild/member_show.html"  # + the co-building panel
    list_columns = ["name", "gender", "id_number_masked", "phone_masked", "community", "work_unit",
                    "category", "status"]
    show_columns = ["name", "gender", "id_number_shown", "phone_shown", "community", "group",
                    "work_unit", "category", "skills", "is_household_center",
                    "is_red_grid_worker", "status", "created_on", "changed_on"]
    add_columns = edit_columns = [
        "name", "id_number", "gender", "phone", "community", "group", "work_unit", "category",
        "skills", "is_household_center", "is_red_grid_worker", "status"]
    # Members per grid (所在网格, or any node's subtree by 所属党组织), 红色网格员, 党员中心户.
    search_columns = ["name", "community", "group", "work_unit", "category", "status", "gender",
                      "is_red_grid_worker", "is_household_center"]
    order_columns = ["name", "category", "status"]
    base_order = ("name", "asc")
    add_form_extra_fields = {
        "id_number": StringField("身份证号", validators=[
            DataRequired("请填写身份证号"), checked_by(validators.normalize_id_number)]),
    }
    edit_form_extra_fields = add_form_extra_fields

    import_columns = ["name", "id_number", "gender", "phone", "community", "group", "work_unit",
                      "category", "skills", "is_household_center", "is_red_grid_worker",
                      "status"]
    import_key = "id_number"
    import_examples = {"name": "张三", "id_number": "11010519491231002X", "phone": "13800000000"}

    def import_key_of(self, value):
        try:
            return crypto.keyed_hash(validators.normalize_id_number(value))
        except ValueError:
            return value

    def import_lookup(self, session, key):
        # 身份证号 is found by its keyed hash, among live members of any unit. One the importer
        # may not read is refused as the form refuses it (no "out of scope" that would tell
        # a registered member from an unregistered person).
        with unscoped(), session.no_autoflush:  # see EntityView.import_lookup
            found = session.execute(select(Member).where(Member.id_number_key == key)
                                    ).scalar_one_or_none()
        if found is not None and not may_read(session, Member, found.id):
            raise DomainError(ID_NOT_REGISTRABLE, "id_number")
        return found

    # The rows come scope-checked (EntityView.action_post: one out of scope refuses them all).
    @bulk_action("open_accounts", lazy_gettext("开通账号"),
                 lazy_gettext("为所选党员开通账号？初始密码只在随后的账号通知单上显示一次。"),
                 "fa-user-plus", single=False)
    def open_accounts(self, items):
        try:
            batch = accounts.open_for_members(self.datamodel.session, current_principal(), items)
        except DomainError as exc:
            flash(str(exc), "danger")
            return redirect(self.get_redirect())
        return redirect(url_for("AccountView.batch", token=batch.id))

    def prefill_form(self, form, pk):
        form.id_number.data = self.datamodel.get(pk).id_number
