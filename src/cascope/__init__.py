"""cascope: calcium imaging from the microscope to publishable numbers.

The public API re-exports the stages; see the subpackages for details.
"""

from importlib.metadata import PackageNotFoundError, version

from cascope.errors import CascopeError, InputError, OutputError
from cascope.io import Movie, Volume

try:
    __version__ = version("cascope")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["CascopeError", "InputError", "Movie", "OutputError", "Volume", "__version__"]
