"""Lineshapes shared by every technique (lmfit's parameter names and conventions).

All peak functions are area-normalised: ``amplitude`` is the integrated area. They are plain
numpy functions that broadcast, so the batch engine can evaluate a whole stack at once
(parameters of shape ``(n, 1)`` against ``x`` of shape ``(m,)``). The conventions are lmfit's
(``sigma`` is the Gaussian standard deviation / Lorentzian HWHM), so an lmfit model and the
batch engine describe the same curve with the same numbers.
"""
from __future__ import annotations

import numpy as np

LN2 = np.log(2.0)
S2PI = np.sqrt(2.0 * np.pi)
S2 = np.sqrt(2.0)
TINY = 1.0e-15



def gaussian(x, amplitude=1.0, center=0.0, sigma=1.0):
    """Area-normalised Gaussian; FWHM = 2 sqrt(2 ln 2) sigma."""
    s = np.maximum(sigma, TINY)
    return amplitude / (S2PI * s) * np.exp(-((x - center) ** 2) / (2 * s * s))


def lorentzian(x, amplitude=1.0, center=0.0, sigma=1.0):
    """Area-normalised Lorentzian; ``sigma`` is the HWHM, FWHM = 2 sigma."""
    s = np.maximum(sigma, TINY)
    return amplitude / np.pi * s / ((x - center) ** 2 + s * s)


def pseudo_voigt(x, amplitude=1.0, center=0.0, sigma=1.0, fraction=0.5):
    """lmfit's pseudo-Voigt: Lorentzian fraction ``fraction``, both with FWHM = 2 sigma."""
    s = np.maximum(sigma, TINY)
    sg = s / np.sqrt(2 * LN2)
    return (1 - fraction) * gaussian(x, amplitude, center, sg) + fraction * lorentzian(x, amplitude, center, s)


def voigt(x, amplitude=1.0, center=0.0, sigma=1.0, gamma=None):
    """Area-normalised Voigt (Faddeeva function); ``gamma`` defaults to ``sigma`` like lmfit."""
    if gamma is None:
        gamma = sigma
    s = np.maximum(sigma, TINY)
    z = (x - center + 1j * gamma) / (s * S2)
    from scipy.special import wofz  # lazily: scipy.special costs ~0.2 s of every command's start-up

    return amplitude * np.real(wofz(z)) / (s * S2PI)


def pearson7(x, amplitude=1.0, center=0.0, sigma=1.0, expon=1.0):
    """lmfit's Pearson VII."""
    from scipy.special import beta

    s = np.maximum(sigma, TINY)
    arg = (x - center) / s
    scale = amplitude / (s * beta(expon - 0.5, 0.5))
    return scale * (1 + arg * arg) ** (-expon)


def fwhm(shape: str, sigma, fraction=None, gamma=None, expon=None):
    """Full width at half maximum of a peak of ``shape`` (same units as sigma)."""
    sigma = np.asarray(sigma, float)
    if shape == "gaussian":
        return 2 * np.sqrt(2 * LN2) * sigma
    if shape in ("lorentzian", "pseudo-voigt"):
        return 2 * sigma
    if shape == "voigt":
        g = sigma if gamma is None else np.asarray(gamma, float)
        fg = 2 * np.sqrt(2 * LN2) * sigma
        fl = 2 * g
        return 0.5346 * fl + np.sqrt(0.2166 * fl ** 2 + fg ** 2)  # Olivero & Longbothum (1977), 0.02 %
    if shape == "pearson7":
        e = 1.0 if expon is None else np.asarray(expon, float)
        return 2 * sigma * np.sqrt(2 ** (1 / e) - 1)
    raise ValueError(f"unknown lineshape {shape!r}")


def sigma_from_fwhm(shape: str, width, fraction=None, expon=None):
    """Inverse of :func:`fwhm` for the shapes whose FWHM depends on sigma alone (voigt: gamma=sigma)."""
    width = np.asarray(width, float)
    if shape == "voigt":
        return width / fwhm("voigt", 1.0)
    return width / fwhm(shape, 1.0, expon=expon)


def csa(x, amplitude=1.0, center=0.0, delta_aniso_ppm=50.0, eta=0.5, sigma=0.5, gamma=0.0, rate_ppm=0.0):
    """Solid-state NMR chemical-shift anisotropy, static or MAS sideband manifold (:mod:`.nmr_models`)."""
    from .nmr_models import csa as f

    return f(x, amplitude, center, delta_aniso_ppm, eta, sigma, gamma, rate_ppm)


def czjzek(x, amplitude=1.0, center=0.0, sigma_mhz=1.0, sigma=0.5, gamma=0.0, larmor_mhz=100.0, spin=1.5,
           rate_ppm=0.0):
    """Czjzek-distributed quadrupolar central transition, static or fast MAS (:mod:`.nmr_models`)."""
    from .nmr_models import czjzek as f

    return f(x, amplitude, center, sigma_mhz, sigma, gamma, larmor_mhz, spin, rate_ppm)


def ext_czjzek(x, amplitude=1.0, center=0.0, cq0_mhz=2.0, eta0=0.5, eps=0.2, sigma=0.5, gamma=0.0, larmor_mhz=100.0,
               spin=1.5, rate_ppm=0.0):
    """Extended Czjzek quadrupolar central transition, static or fast MAS (:mod:`.nmr_models`)."""
    from .nmr_models import ext_czjzek as f

    return f(x, amplitude, center, cq0_mhz, eta0, eps, sigma, gamma, larmor_mhz, spin, rate_ppm)


def quadrupolar(x, amplitude=1.0, center=0.0, cq_mhz=2.0, eta=0.5, sigma=0.5, gamma=0.0, larmor_mhz=100.0, spin=1.5,
                rate_ppm=0.0):
    """Quadrupolar central transition of one site: static, finite-speed MAS with its sidebands, or
    infinite-speed MAS (``rate_ppm`` 0 / > 0 / < 0; :mod:`.nmr_models`)."""
    from .nmr_models import quadrupolar as f

    return f(x, amplitude, center, cq_mhz, eta, sigma, gamma, larmor_mhz, spin, rate_ppm)


FUNCTIONS = {"gaussian": gaussian, "lorentzian": lorentzian, "pseudo-voigt": pseudo_voigt, "voigt": voigt,
             "pearson7": pearson7, "csa": csa, "czjzek": czjzek,
             "ext-czjzek": ext_czjzek, "quadrupolar": quadrupolar}  # numpy functions of the area-normalised shapes


def evaluate(shape: str, x, **params):
    try:
        return FUNCTIONS[shape](x, **params)
    except KeyError:
        raise ValueError(f"unknown lineshape {shape!r}; one of {sorted(FUNCTIONS)}") from None


# ============================================================================ the registry
from dataclasses import dataclass  # noqa: E402


@dataclass(frozen=True)
class LineShape:
    """One entry of the lineshape registry (the only place a lineshape name is written).

    Attributes
    ----------
    name : str
        Registry name (``"pseudo-voigt"``, ``"gl-product"``...): CLI choices, pydantic types and
        docs are derived from it.
    model : str
        ``"module:Class"`` of the lmfit model (imported on use).
    params : tuple of str
        Parameter names of the model, in its function's order.
    intensity : str
        The parameter that scales the line (``amplitude`` = area, or ``height``); satellites
        scale it by their ratio.
    width : tuple of str
        Shape parameters a satellite shares with its parent (width and mixing).
    batch_kind : str or None
        Kernel of :mod:`specproc.fitting._batch_kernels` (None: the batch engine falls back to lmfit).
    description : str
    context : tuple of str
        Fixed parameters that describe the measurement, not the line (NMR models: ``rate_ppm``,
        ``larmor_mhz``, ``spin``): a technique sets them (``Peak.init``); never fitted.
    numeric_fwhm : bool
        The FWHM has no closed form: :func:`fwhm_of` evaluates the line (``nmr_models.fwhm_value``).
    """

    name: str
    model: str
    params: tuple
    intensity: str
    width: tuple
    batch_kind: str | None
    description: str = ""
    context: tuple = ()
    numeric_fwhm: bool = False

    def lmfit_model(self, prefix: str = ""):
        import importlib

        mod, _, cls = self.model.partition(":")
        return getattr(importlib.import_module(mod), cls)(prefix=prefix)


REGISTRY: dict[str, LineShape] = {s.name: s for s in (
    LineShape("gaussian", "lmfit.models:GaussianModel", ("amplitude", "center", "sigma"), "amplitude",
              ("sigma",), "gaussian", "area-normalised Gaussian"),
    LineShape("lorentzian", "lmfit.models:LorentzianModel", ("amplitude", "center", "sigma"), "amplitude",
              ("sigma",), "lorentzian", "area-normalised Lorentzian (sigma = HWHM)"),
    LineShape("pseudo-voigt", "lmfit.models:PseudoVoigtModel", ("amplitude", "center", "sigma", "fraction"),
              "amplitude", ("sigma", "fraction"), "pseudo-voigt", "lmfit pseudo-Voigt (Lorentzian fraction)"),
    LineShape("voigt", "lmfit.models:VoigtModel", ("amplitude", "center", "sigma", "gamma"), "amplitude",
              ("sigma", "gamma"), "voigt", "area-normalised Voigt (Faddeeva)"),
    LineShape("pearson7", "lmfit.models:Pearson7Model", ("amplitude", "center", "sigma", "expon"), "amplitude",
              ("sigma", "expon"), "pearson7", "Pearson VII"),
    LineShape("gl-product", "specproc.fitting.components:GLProductModel", ("height", "center", "fwhm", "mixing"),
              "height", ("fwhm", "mixing"), "gl_product", "CasaXPS GL(m) product (height-normalised)"),
    LineShape("gl-sum", "specproc.fitting.components:GLSumModel", ("height", "center", "fwhm", "mixing"),
              "height", ("fwhm", "mixing"), "gl_sum", "CasaXPS SGL(m) sum (height-normalised)"),
    LineShape("doniach", "lmfit.models:DoniachModel", ("amplitude", "center", "sigma", "gamma"), "amplitude",
              ("sigma", "gamma"), None, "Doniach-Sunjic asymmetric metal line (lmfit)"),
    # solid-state NMR models (specproc.fitting.nmr_models: kernels built on first use; center = isotropic shift)
    LineShape("csa", "specproc.fitting.nmr_models:CSAModel",
              ("amplitude", "center", "delta_aniso_ppm", "eta", "sigma", "gamma", "rate_ppm"), "amplitude",
              ("delta_aniso_ppm", "eta", "sigma", "gamma", "rate_ppm"), None,
              "NMR chemical-shift anisotropy: static powder pattern or MAS sideband manifold", ("rate_ppm",), True),
    LineShape("quadrupolar", "specproc.fitting.nmr_models:QUADRUPOLARModel",
              ("amplitude", "center", "cq_mhz", "eta", "sigma", "gamma", "larmor_mhz", "spin", "rate_ppm"), "amplitude",
              ("cq_mhz", "eta", "sigma", "gamma", "larmor_mhz", "spin", "rate_ppm"), None,
              "NMR quadrupolar central transition of one site (CQ, eta): static, MAS at a finite rate with its "
              "spinning sidebands, or MAS at infinite speed (rate_ppm 0 / > 0 / < 0)",
              ("larmor_mhz", "spin", "rate_ppm"), True),
    LineShape("czjzek", "specproc.fitting.nmr_models:CZJZEKModel",
              ("amplitude", "center", "sigma_mhz", "sigma", "gamma", "larmor_mhz", "spin", "rate_ppm"), "amplitude",
              ("sigma_mhz", "sigma", "gamma", "larmor_mhz", "spin", "rate_ppm"), None,
              "NMR quadrupolar central transition with a Czjzek (CQ, eta) distribution, static or fast MAS",
              ("larmor_mhz", "spin", "rate_ppm"), True),
    LineShape("ext-czjzek", "specproc.fitting.nmr_models:EXTCZJZEKModel",
              ("amplitude", "center", "cq0_mhz", "eta0", "eps", "sigma", "gamma", "larmor_mhz", "spin", "rate_ppm"),
              "amplitude", ("cq0_mhz", "eta0", "eps", "sigma", "gamma", "larmor_mhz", "spin", "rate_ppm"), None,
              "NMR quadrupolar central transition with an extended Czjzek distribution (CQ0, eta0, eps), static or "
              "fast MAS", ("larmor_mhz", "spin", "rate_ppm"), True),
)}


def register(shape: LineShape, function=None) -> None:
    """The registry's extension point: add ``shape`` (and its numpy ``function`` for
    :func:`evaluate` / component curves). Names must be new. Note that
    :data:`specproc.fitting.models.Shape` (pydantic) is built from :data:`PEAK_SHAPES` when
    ``specproc.fitting.models`` is first imported: register before that, or add the entry to
    :data:`REGISTRY` here (what the NMR models do, so that ``import specproc`` stays fast: the
    entries are names; the kernels load on first use)."""
    global PEAK_SHAPES
    if shape.name in REGISTRY:
        raise ValueError(f"lineshape {shape.name!r} is already registered")
    REGISTRY[shape.name] = shape
    if function is not None:
        FUNCTIONS[shape.name] = function
    PEAK_SHAPES = tuple(REGISTRY)

#: every peak lineshape name (CLI ``choices``, pydantic ``Literal``)
PEAK_SHAPES: tuple[str, ...] = tuple(REGISTRY)
#: the symmetric area-normalised shapes most spectroscopies fit (NMR, FTIR, XRD defaults)
COMMON_SHAPES: tuple[str, ...] = ("gaussian", "lorentzian", "pseudo-voigt", "voigt")
#: backward-compatible view: name -> (lmfit class name, parameters)
SHAPES = {k: (v.model.partition(":")[2], v.params) for k, v in REGISTRY.items()}


def get(name: str) -> LineShape:
    """Registry entry of ``name`` (a clear error listing the names otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown lineshape {name!r}; one of {list(REGISTRY)}") from None


def _real(v):
    """A float for a scalar, a float array for an array of values (a stack of fits at once)."""
    a = np.asarray(v, float)
    return float(a) if a.ndim == 0 else a


def fwhm_of(shape: str, values: dict, prefix: str = ""):
    """FWHM of a registry peak from its parameter values (``prefix + name`` keys); a float, or an
    array when the values are arrays (one per fit of a stack)."""
    v = {n: values.get(prefix + n) for n in get(shape).params}
    if get(shape).numeric_fwhm:
        from .nmr_models import fwhm_value

        arrs = {k: np.asarray(a, float) for k, a in v.items() if a is not None}
        shp = np.broadcast(*arrs.values()).shape
        if not shp:
            return fwhm_value(shape, {k: float(a) for k, a in arrs.items()})
        b = {k: np.broadcast_to(a, shp) for k, a in arrs.items()}
        return np.array([fwhm_value(shape, {k: float(a[i]) for k, a in b.items()}) for i in np.ndindex(shp)]
                        ).reshape(shp)
    if shape in ("gl-product", "gl-sum"):
        return _real(v["fwhm"])
    if shape == "doniach":
        return _real(2 * np.asarray(v["sigma"], float))  # lmfit's definition for the symmetric limit
    return _real(fwhm(shape, v["sigma"], gamma=v.get("gamma"), expon=v.get("expon")))


def area_of(shape: str, values: dict, prefix: str = ""):
    """Integrated area of a registry peak (closed form where one exists; numerical otherwise); a
    float, or an array when the values are arrays."""
    v = {n: values.get(prefix + n) for n in get(shape).params}
    if get(shape).intensity == "amplitude":
        return _real(v["amplitude"])
    w, h, m = (np.asarray(v[k], float) for k in ("fwhm", "height", "mixing"))
    if shape == "gl-sum":
        return _real(h * w * ((1 - m) * np.sqrt(np.pi / (4 * LN2)) + m * np.pi / 2))
    factor = np.vectorize(gl_product_area_factor, otypes=[float])(m) if m.ndim else gl_product_area_factor(float(m))
    return _real(h * w * factor)


_GL_FACTOR: dict[float, float] = {}


def gl_product_area_factor(mixing: float) -> float:
    """Area of a CasaXPS GL(m) product line of unit height and unit FWHM.

    The product form has no closed-form area: quadrature over +-200 FWHM (Lorentzian tails),
    cached per mixing (rounded to 1e-6) since error propagation calls it many times.
    """
    key = round(float(mixing), 6)
    if key not in _GL_FACTOR:
        from .components import gl_product

        x = np.linspace(-200.0, 200.0, 80001)
        y = gl_product(x, 1.0, 0.0, 1.0, key)
        trap = getattr(np, "trapezoid", None) or np.trapz
        # m = 1 is a pure Lorentzian 1/(1 + 4u^2): add its tails beyond +-200 (2 x 1/(4 x 200));
        # for m < 1 the Gaussian factor has killed them long before
        _GL_FACTOR[key] = float(trap(y, x)) + (1.0 / 400.0 if key >= 1.0 else 0.0)
    return _GL_FACTOR[key]
