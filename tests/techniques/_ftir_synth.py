"""FTIR measurements of generated spectra (``sample_data/generate_ftir.py``, the ``ftir_generator``
fixture) for the FTIR technique tests."""
from specproc.core.measurement import new_measurement


def measurement(gen, y, kind="absorbance", res=4.0, x=None, sample=None):
    """``y`` on the generator's grid (or ``x``) as an FTIR measurement of ``kind`` at resolution ``res`` cm-1."""
    return new_measurement(y, [("wavenumber", gen.GRID if x is None else x, "1/cm")], technique="ftir",
                           units="dimensionless", acquisition={"y_kind": kind, "resolution_cm1": res}, sample=sample)
