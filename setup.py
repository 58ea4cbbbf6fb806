"""Ships the Hydra config tree `conf/` inside the package as `inattn/conf`.

`conf/` stays at the top of the repository (where users read and edit it); an installed inattn
has no repository around it, so the wheel carries a copy. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["inattn*"]), "inattn.conf"],
    package_dir={"inattn.conf": "conf"},
    package_data={"inattn.conf": ["*.yaml", "**/*.yaml", "**/*.md"]},
)
