"""`python -m nnmodules`: the same as the `litmodules` command."""

from nnmodules.commands import main

if __name__ == "__main__":
    main()
