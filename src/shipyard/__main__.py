from shipyard.cli.main import run

run()
