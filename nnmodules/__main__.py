"""`python -m nnmodules`: the same as the `litmodules` command."""

from nnmodules.cli.main import main

if __name__ == "__main__":
    main()
