# The front door. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check bench resilience recon products flaws fuzz install clean docs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing paysim into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install --upgrade pip > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(BIN)/python -m pip install -e '.[dev]' >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@$(BIN)/paysim suite scenarios --out out --junit out/junit.xml

test: $(STAMP)
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/ruff check paysys mockbanks sim reports tests
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/paysim bench

resilience: $(STAMP)
	@$(BIN)/paysim suite scenarios/resilience --out out/resilience --junit out/resilience/junit.xml

recon: $(STAMP)
	@$(BIN)/paysim suite scenarios/recon --out out/recon --junit out/recon/junit.xml

products: $(STAMP)
	@$(BIN)/paysim suite scenarios/products --out out/products --junit out/products/junit.xml

# every flaw scenario must fail (exit 1): the suite's exit code is inverted
flaws: $(STAMP)
	@mkdir -p out/flaws; for f in scenarios/flaws/*.toml; do \
	  $(BIN)/paysim run $$f --db out/flaws/$$(basename $$f .toml).db > /dev/null 2>&1; rc=$$?; \
	  if [ $$rc -eq 1 ]; then echo "caught   $$f"; else echo "MISSED   $$f (exit $$rc)"; exit 1; fi; \
	done

BUDGET ?= 200
SEEDS ?= 4
fuzz: $(STAMP)
	@seq 1 $(SEEDS) | xargs -P 2 -I{} $(BIN)/paysim fuzz --budget $(BUDGET) --seed {} --out out/fuzz

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
