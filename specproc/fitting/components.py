"""specproc's own lmfit component models (XPS GL lineshapes, EELS background, AFM contact mechanics).

They are ordinary :class:`lmfit.Model` subclasses (compose with ``+``, ``prefix=``), and the batch
engine (:func:`specproc.fitting.batch.fit_batch`) recognises them and uses its analytic Jacobians.

Conventions
-----------
* **GL lineshapes follow CasaXPS**: ``mixing`` is CasaXPS's ``m/100`` (``GL(30)`` is ``mixing=0.3``),
  both forms are *height*-normalised (parameter ``height``) with full width at half maximum ``fwhm``:

  - :class:`GLProductModel` = CasaXPS ``GL(m)``:
    ``height * exp(-4 ln2 (1-m) u^2) / (1 + 4 m u^2)``, ``u = (x - center) / fwhm``;
  - :class:`GLSumModel` = CasaXPS ``SGL(m)``:
    ``height * [(1-m) exp(-4 ln2 u^2) + m / (1 + 4 u^2)]``.

  The sum form has the closed-form area ``height * fwhm * ((1-m) sqrt(pi/(4 ln2)) + m pi/2)``
  (derived parameter ``area``); the product form has none.
* **Force curves**: ``x`` is the indentation axis ``d`` (m), increasing into the sample; the contact
  point ``contact_point`` is ``d0`` and ``delta = max(d - d0, 0)``. Forces in N, ``E`` in Pa, ``R`` in m.

  - :class:`HertzParaboloidModel`: ``F = 4/3 E/(1-nu^2) sqrt(R) delta^1.5 + baseline``;
  - :class:`SneddonConeModel`: ``F = 2/pi E/(1-nu^2) tan(alpha) delta^2 + baseline``
    (``alpha`` = half opening angle in degrees, as in nanite);
  - :class:`DMTModel`: Hertz paraboloid minus a constant adhesion force while in contact
    (``F = 4/3 E* sqrt(R) delta^1.5 - adhesion + baseline`` for ``d > d0``).

  ``R``, ``nu`` and ``alpha`` are geometry / material constants: they are created fixed
  (``vary=False``); ``E`` > 0.
"""
from __future__ import annotations

import lmfit
import numpy as np

from . import _batch_kernels as K

__all__ = ["gl_product", "gl_sum", "hertz_paraboloid", "sneddon_cone", "dmt", "GLProductModel", "GLSumModel",
           "HertzParaboloidModel", "SneddonConeModel", "DMTModel"]


def gl_product(x, height=1.0, center=0.0, fwhm=1.0, mixing=0.3):
    """CasaXPS GL(m) product lineshape (height-normalised); ``mixing`` = m/100."""
    return K.d_gl_product(np.asarray(x, float), height, center, fwhm, mixing)[0]


def gl_sum(x, height=1.0, center=0.0, fwhm=1.0, mixing=0.3):
    """CasaXPS SGL(m) sum lineshape (height-normalised); ``mixing`` = m/100."""
    return K.d_gl_sum(np.asarray(x, float), height, center, fwhm, mixing)[0]


def hertz_paraboloid(x, E=1.0e3, R=1.0e-5, nu=0.5, contact_point=0.0, baseline=0.0):
    """Hertz paraboloid force (N) at indentation axis ``x`` (m); ``E`` in Pa, ``R`` in m."""
    return K.d_hertz(np.asarray(x, float), E, R, nu, contact_point, baseline)[0]


def sneddon_cone(x, E=1.0e3, alpha=20.0, nu=0.5, contact_point=0.0, baseline=0.0):
    """Sneddon cone force (N); ``alpha`` = half opening angle (degrees)."""
    return K.d_sneddon(np.asarray(x, float), E, alpha, nu, contact_point, baseline)[0]


def dmt(x, E=1.0e3, R=1.0e-5, nu=0.5, adhesion=0.0, contact_point=0.0, baseline=0.0):
    """DMT force (N): Hertz paraboloid minus ``adhesion`` (N) while in contact."""
    return K.d_dmt(np.asarray(x, float), E, R, nu, adhesion, contact_point, baseline)[0]


class _Base(lmfit.Model):
    _func = None

    def __init__(self, independent_vars=("x",), prefix="", nan_policy="raise", **kwargs):
        kwargs.update({"prefix": prefix, "nan_policy": nan_policy, "independent_vars": list(independent_vars)})
        super().__init__(type(self)._func, **kwargs)
        self._set_hints()

    def _set_hints(self):
        pass


class GLProductModel(_Base):
    """CasaXPS GL(m) product lineshape; parameters ``height, center, fwhm, mixing`` (see module doc)."""

    _func = staticmethod(gl_product)

    def _set_hints(self):
        self.set_param_hint("fwhm", min=0)
        self.set_param_hint("mixing", min=0, max=1)

    def guess(self, data, x, **kws):
        i = int(np.argmax(data))
        pars = self.make_params(height=float(data[i]), center=float(x[i]), fwhm=float(np.ptp(x)) / 10, mixing=0.3)
        return lmfit.models.update_param_vals(pars, self.prefix, **kws)


class GLSumModel(GLProductModel):
    """CasaXPS SGL(m) sum lineshape; adds the derived ``area`` parameter."""

    _func = staticmethod(gl_sum)

    def _set_hints(self):
        super()._set_hints()
        p = self.prefix
        self.set_param_hint("area", expr=f"{p}height*{p}fwhm*((1-{p}mixing)*sqrt(pi/(4*log(2)))"
                                          f" + {p}mixing*pi/2)")


class HertzParaboloidModel(_Base):
    """Hertz paraboloid with contact point; ``E`` (Pa) and ``contact_point``, ``baseline`` vary."""

    _func = staticmethod(hertz_paraboloid)

    def _set_hints(self):
        self.set_param_hint("E", min=0)
        self.set_param_hint("R", vary=False, min=0)
        self.set_param_hint("nu", vary=False, min=-1, max=0.5)


class SneddonConeModel(_Base):
    """Sneddon cone with contact point; ``alpha`` (degrees) and ``nu`` fixed by default."""

    _func = staticmethod(sneddon_cone)

    def _set_hints(self):
        self.set_param_hint("E", min=0)
        self.set_param_hint("alpha", vary=False, min=0, max=90)
        self.set_param_hint("nu", vary=False, min=-1, max=0.5)


class DMTModel(HertzParaboloidModel):
    """DMT: Hertz paraboloid plus a constant adhesion offset in contact."""

    _func = staticmethod(dmt)

    def _set_hints(self):
        super()._set_hints()
        self.set_param_hint("adhesion", min=0)


#: lineshape functions the batch engine knows -> kernel kind
KNOWN_FUNCS = {gl_product: "gl_product", gl_sum: "gl_sum", hertz_paraboloid: "hertz", sneddon_cone: "sneddon",
               dmt: "dmt"}
