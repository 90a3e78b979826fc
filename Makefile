# Oversight: the commands a developer and CI use.
.PHONY: all dependencies build release demo test clean

all: build

dependencies:
	@Deploy/local/install-dependencies.sh

build: dependencies
	swift build

release: dependencies
	swift build -c release

# Private PostgreSQL cluster, coordinator, two workers, the bundled samples; prints a summary.
demo: build
	.build/debug/oversight demo

# Whole suite against a throwaway PostgreSQL cluster.
test: dependencies
	Deploy/local/run-tests.sh

clean:
	rm -rf .build .oversight
