from shipyard.statuspage.server import main

main()
