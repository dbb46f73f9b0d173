from pixmorph.cli import main

main()
