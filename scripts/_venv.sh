# shellcheck shell=bash
# Shared virtualenv setup for scripts/test and scripts/run-example.
#
# Source this file from the repository root. It expects one argument: the pip
# install target (for example '.[test]' or '.'). Afterwards "$venv" holds the
# path of a virtualenv with the project installed in editable mode.
#
# Environment:
#   TRIOWS_VENV  virtualenv directory (default: .venv)
#   PYTHON       interpreter used to create the virtualenv (default: python3)

triows_install_target="${1:-.}"
venv="${TRIOWS_VENV:-.venv}"
triows_python="${PYTHON:-python3}"

if ! command -v "$triows_python" >/dev/null 2>&1; then
    echo "error: Python interpreter '$triows_python' not found." >&2
    echo "       Install Python >= 3.10 or set PYTHON=/path/to/python3.x" >&2
    exit 1
fi

if ! "$triows_python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
    echo "error: triows needs Python >= 3.10, but '$triows_python' is" \
        "$("$triows_python" -c 'import platform; print(platform.python_version())')." >&2
    echo "       Set PYTHON=/path/to/python3.10-or-newer and try again." >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "==> creating virtualenv in $venv (using $triows_python)"
    if ! "$triows_python" -m venv "$venv"; then
        echo "error: could not create a virtualenv with '$triows_python'." >&2
        echo "       On Debian/Ubuntu install the 'python3-venv' package." >&2
        exit 1
    fi
fi

echo "==> installing triows ($triows_install_target) into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$triows_install_target"

unset triows_install_target triows_python
