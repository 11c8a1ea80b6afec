# The two commands of a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
export FLASK_APP := run.py

.PHONY: two-hosts reliability-faults-and-load reliability-intake run test lint install assets instance db serve bench reliability clean

# Each step says what it does first: a fresh machine spends minutes in pip and npm.
$(BIN)/activate: requirements.txt requirements-dev.txt
	@echo "==> 安装 Python 依赖（requirements-dev.txt，首次需几分钟）"
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --progress-bar off -r requirements-dev.txt
	touch $(BIN)/activate

install: $(BIN)/activate assets translations

# Front-end assets come from the npm registry into a git-ignored folder (never committed).
assets: app/static/vendor/.installed
app/static/vendor/.installed: package.json package-lock.json
	@echo "==> 安装前端资源（npm：echarts）"
	npm ci --no-audit --no-fund --silent
	mkdir -p app/static/vendor
	cp node_modules/echarts/dist/echarts.min.js app/static/vendor/
	touch $@

translations: $(BIN)/activate
	@echo "==> 编译界面翻译"
	$(BIN)/pybabel compile -f -d app/translations >/dev/null

# Development secrets, generated once into instance/ (git-ignored, mode 600).
instance:
	@mkdir -p instance
	@for f in secret_key data_key; do \
	  test -f instance/$$f || (umask 077; $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(48))" > instance/$$f); \
	done

db: install instance
	@echo "==> 迁移数据库（Alembic）"
	$(BIN)/flask db upgrade
	@echo "==> 同步角色与权限、数据字典"
	$(BIN)/flask gongjian init
	@echo "==> 加载演示数据（已有则跳过）"
	$(BIN)/flask seed demo

run: db
	@echo "==> 启动服务：http://127.0.0.1:$(PORT)/（Ctrl+C 停止）"
	$(BIN)/python run.py --port $(PORT)

# Two processes, each with its own database (tests/conftest.py): a module runs whole in one of
# them, the timing-sensitive modules one after another in one (the "serial" unit).
PYTEST_N ?= 2
test: install
	$(BIN)/python -m pytest -q -n $(PYTEST_N) --dist loadfile $(PYTEST_ARGS)

# Seconds: ruff (its default rules and import order, ruff.toml) and the import contracts of
# .importlinter (no import cycle in app/, imports inside functions included; what models,
# services, exports and imports may not import).
lint: $(BIN)/activate
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Builds the city data once into $(BENCH_DATA) (default ~/.cache/gongjian-bench), then measures
# SQLite and, when reachable, PostgreSQL (bench/README.md): every figure, then the dashboard and
# the list pages by the server's own time, under load. Not part of .ci/run.
bench: install instance
	$(BIN)/python -m bench.run --db all $(BENCH_ARGS)
	$(BIN)/python -m bench.run --db all --dashboard-only $(BENCH_ARGS)
	$(BIN)/python -m bench.run --db all --lists-only $(BENCH_ARGS)
	$(BIN)/python -m bench.org_import

# Long runs on the machine's PostgreSQL (reliability/, docs/RELIABILITY.md): the SQLite
# full/read-only faults, kill -9 of a worker mid-import and mid-export, a PostgreSQL restart,
# then the load (RELIABILITY_LOAD_SECONDS, default 180), then two hosts with a worker and beat
# (reliability/two_hosts.py; TWO_HOSTS_EXPORT_ROWS, default 200,000). Figures in artifacts/reliability/.
reliability: reliability-faults-and-load reliability-intake two-hosts

reliability-faults-and-load: install instance
	$(BIN)/python -m pytest -q -p no:cacheprovider reliability/test_sqlite_faults.py
	$(BIN)/python -m reliability.faults
	$(BIN)/python -m reliability.load

# Residents' public intake (issue 22): 200 submissions a minute from 50 loopback addresses
# (127.0.0.2–51) for RELIABILITY_INTAKE_SECONDS (default 180), limits in Redis (db 2 unless
# RELIABILITY_REDIS_URL): the accepted all stored, the rest 429 in Chinese, no error.
reliability-intake: install instance
	$(BIN)/python -m reliability.intake

# Two hosts, a worker and beat (issue 21); .ci/run runs it with 50,000 rows in at most 8 minutes
# (TWO_HOSTS_TIMEOUT, seconds).
two-hosts: install instance
	timeout $${TWO_HOSTS_TIMEOUT:-900} $(BIN)/python -m reliability.two_hosts --export-rows $${TWO_HOSTS_EXPORT_ROWS:-200000}

clean:
	rm -rf $(VENV) node_modules app/static/vendor instance/gongjian.db
