"""The C extension; everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("bidder._native",
                  ["bidder/_native.c", "bidder/_writer.c", "bidder/_objects.c", "bidder/_targeting.c",
                   "bidder/_imp.c", "bidder/_admit.c", "bidder/_decide.c"],
                  depends=["bidder/_native.h"], libraries=["crypto"],
                  extra_compile_args=["-O2", "-Wall", "-Wextra"]),
    ],
)
