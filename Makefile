# Two commands first: `make run` (the platform locally) and `make test` (the suite on real
# PostgreSQL and Redis). Both install what they need; see scripts/.
.PHONY: run test lint fmt bench clean

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh $(PYTEST_ARGS)

lint:
	@bash scripts/lint.sh

fmt:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench:
	@bash scripts/bench.sh

clean:
	rm -rf var/ .pytest_cache .ruff_cache .mypy_cache .hypothesis staticfiles test-artifacts
