# qualcode: `make demo` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= qualcode.db
PORT   ?= 8001

.PHONY: demo demo-db test install browser lock bench clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) || { \
	  echo "Creating the virtualenv failed: on Debian, install python3-venv (apt-get install python3-venv)."; \
	  rm -rf $(VENV); exit 1; }

# Installs exactly the versions in constraints.txt, so every machine gets the same set.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# Builds $(DB) from corpora/ with the default codebook and the sample coding.
demo-db: install
	rm -f $(DB) $(DB)-wal $(DB)-shm
	$(BIN)/qualcode init --db $(DB) \
	  --title "qualcode — continuous improvement in three school districts (fictional sample)" \
	  --description "Interviews, focus groups and site-visit notes from an evaluation of how school districts run continuous improvement, coded against the lessons codebook. The sample corpus is fictional: every district, school and person in it was invented for qualcode." \
	  --license "Apache-2.0 (code); sample corpus CC BY 4.0" --source "qualcode sample corpora"
	$(BIN)/qualcode codebook load lessons --db $(DB)
	$(BIN)/qualcode ingest --manifest corpora/manifest.csv --db $(DB)
	$(BIN)/qualcode code --batch corpora/coding/rosa-delgado.csv --create-coder --db $(DB)
	$(BIN)/qualcode code --batch corpora/coding/sam-okonjo.csv --create-coder --db $(DB)
	$(BIN)/qualcode suggest --db $(DB)
	$(BIN)/qualcode status --db $(DB)
	@echo
	@echo "qualcode is installed in $(BIN): run it as $(BIN)/qualcode, or put it on your PATH for this"
	@echo "shell with 'source $(BIN)/activate' and then just type 'qualcode'. The demo project is $(DB)."

demo: demo-db
	$(BIN)/qualcode serve --db $(DB) --port $(PORT)

# Browser tests use Debian's Chromium; install it when missing (root, as on CI and dev machines).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: run 'sudo apt-get install chromium' (needed by the browser tests)"; exit 1; fi; }

test: install browser
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/suggest.py
	$(BIN)/python bench/learning.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/agreement.py
	$(BIN)/python bench/workspace.py
	$(BIN)/python bench/writes.py
	$(BIN)/python bench/refi.py

# Refresh constraints.txt from the current virtualenv after changing dependencies.
lock: install
	{ echo "# Exact versions known to work together (Python 3.11, Linux). Regenerate with \`make lock\`."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^qualcode'; } > constraints.txt

clean:
	rm -rf $(VENV) $(DB) $(DB)-wal $(DB)-shm .pytest_cache
