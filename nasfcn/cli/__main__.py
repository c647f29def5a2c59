"""``python -m nasfcn.cli``: the same as the ``nasfcn`` command."""

from nasfcn.cli import main

if __name__ == "__main__":
    main()
