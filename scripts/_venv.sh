# Sourced by the scripts: a virtualenv in .venv with shipper and its test tools.
# Set SHIPPER_VENV to use another folder.
venv="${SHIPPER_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e ".[test]"
  touch "$stamp"
fi
export PATH="$PWD/$venv/bin:$PATH"
