"""Tempo estimation: onset autocorrelation, sub-frame period refinement, octave choice."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bouncetag.classifier.results import TempoEstimate

# At 16 kHz: a 1024-point (64 ms) STFT every 128 samples (8 ms, 125 frames/s). Other rates keep
# the same durations (see _stft_sizes).
HOP_LENGTH = 128
N_FFT = 1024
_REFERENCE_RATE = 16_000
N_BANDS = 24
MAX_WINDOW_SECONDS = 60.0  # analyse at most this much, taken from the middle of the file
MIN_SECONDS = 2.0  # below this there are too few beats to say anything
PRIOR_CENTER_BPM = 110.0  # where listeners put the beat of most popular music
PRIOR_SIGMA_OCTAVES = 1.0
COMB_SECONDS = 8.0  # lags over which the comb score averages the autocorrelation
# Binary octaves only: x3 and x1/3 picked dotted (2/3, 3/2) tempi off 4/4 loops far more often
# than they found a real triple meter.
OCTAVE_RATIOS = (1 / 4, 1 / 2, 1.0, 2.0, 4.0)
SEARCH_MIN_BPM, SEARCH_MAX_BPM = 60.0, 240.0  # the anchor; its family spans x1/4 to x4
ANCHOR_SHARE = 0.85  # a peak this close to the strongest counts as "near-best" for the anchor
HAT_BAND_HZ = 3000.0  # bands above this carry the hats, whose rate is usually twice the beat's
# Octave score = comb ** COMB_EXPONENT * (0.05 + hats) ** TATUM_EXPONENT * prior, where
# hats = max(tatum, SIXTEENTH_HAT_WEIGHT * tatum16). The weights and the prior were chosen on a
# broad plateau of results on generated loops (benchmarks/tempo.py; see docs/tempo.md).
COMB_EXPONENT = 1.0
TATUM_EXPONENT = 2.0
# 16th-note hats are common too, but less so than 8ths: a beat whose hats run at four to the
# beat gets this share of the evidence that 8th hats would give.
SIXTEENTH_HAT_WEIGHT = 0.6
# The onset envelope's spread (std, in log-flux units) says whether anything is struck at all:
# silence and steady tones stay below MIN_ONSET_SPREAD (no estimate), drum loops reach 0.1-0.4.
MIN_ONSET_SPREAD = 0.02
FULL_ONSET_SPREAD = 0.05


@dataclass(frozen=True)
class _Candidate:
    bpm: float
    comb: float  # mean normalised autocorrelation at multiples of the period (beat evidence)
    tatum: float  # hats repeat at half the beat period but not at a quarter of it
    tatum16: float  # the same one level down: 16th-note hats
    score: float  # comb x hat-subdivision evidence x tempo prior
    in_range: bool


def _stft_sizes(sample_rate: int) -> tuple[int, int]:
    """(n_fft, hop) with the same durations as N_FFT and HOP_LENGTH at 16 kHz."""
    scale = sample_rate / _REFERENCE_RATE
    n_fft = 1 << max(6, round(math.log2(N_FFT * scale)))
    return n_fft, max(1, round(HOP_LENGTH * scale))


def _frames(samples: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    n_frames = 1 + (len(samples) - n_fft) // hop
    stride = samples.strides[0]
    return np.lib.stride_tricks.as_strided(
        samples, shape=(n_frames, n_fft), strides=(hop * stride, stride), writeable=False
    )


def _band_matrix(sample_rate: int, n_fft: int) -> np.ndarray:
    """Log-spaced bands (30 Hz to Nyquist) so kick, snare and hats count alike, not by bin count."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = np.geomspace(30.0, sample_rate / 2, N_BANDS + 1)
    bands = np.zeros((len(freqs), N_BANDS), dtype=np.float32)
    for b in range(N_BANDS):
        mask = (freqs >= edges[b]) & (freqs < edges[b + 1])
        if not mask.any():  # the lowest bands can be narrower than one bin
            mask = np.abs(freqs - math.sqrt(edges[b] * edges[b + 1])) == np.min(
                np.abs(freqs - math.sqrt(edges[b] * edges[b + 1]))
            )
        bands[mask, b] = 1.0 / mask.sum()
    return bands


def _band_flux(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Half-wave rectified log-band spectral flux, shape (frames, N_BANDS)."""
    x = np.ascontiguousarray(samples, dtype=np.float32)
    n_fft, hop = _stft_sizes(sample_rate)
    if len(x) < n_fft + hop:
        return np.zeros((0, N_BANDS), dtype=np.float32)
    # numpy's FFT: scipy.fft would be a little faster per call but costs ~0.4 s to import, which
    # is most of the BPM budget for the first file a process sees.
    window = np.hanning(n_fft).astype(np.float32)
    spectrum = np.abs(np.fft.rfft(_frames(x, n_fft, hop) * window, axis=1)).astype(np.float32)
    bands = np.log1p(100.0 * (spectrum @ _band_matrix(sample_rate, n_fft)))
    return np.maximum(0.0, np.diff(bands, axis=0))


def _high_bands(sample_rate: int) -> np.ndarray:
    edges = np.geomspace(30.0, sample_rate / 2, N_BANDS + 1)
    return edges[:-1] >= HAT_BAND_HZ


def onset_envelope(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """Band-wise log spectral flux: how much new energy arrives in each frame.

    Args:
        samples: mono float audio.
        sample_rate: its rate in Hz.

    Returns:
        (envelope, frames per second). The envelope is non-negative, one value per hop.
    """
    flux = _band_flux(samples, sample_rate)
    return flux.mean(axis=1).astype(np.float32), sample_rate / _stft_sizes(sample_rate)[1]


def _autocorrelation(envelope: np.ndarray) -> np.ndarray:
    """Unbiased, normalised autocorrelation (lag 0 is 1) of the mean-removed envelope."""
    x = envelope - envelope.mean()
    n = len(x)
    size = 1 << (2 * n - 1).bit_length()
    spec = np.fft.rfft(x, size)
    acf = np.fft.irfft(spec * np.conj(spec), size)[:n]
    acf /= np.arange(n, 0, -1)  # unbiased: each lag has fewer overlapping frames
    if acf[0] <= 0:
        return np.zeros(n)
    return acf / acf[0]


def _interp(acf: np.ndarray, lag: np.ndarray | float) -> np.ndarray:
    return np.interp(lag, np.arange(len(acf)), acf, right=0.0)


def _refine_period(
    acf: np.ndarray, period: float, max_lag: float, uncertainty: float = 0.005
) -> float:
    """Sub-frame period from the autocorrelation peaks near k * period, k = 1, 2, 4, 8, 12, ...

    `uncertainty` is the relative error of the starting period.

    Each peak is located by parabolic interpolation; the period is the least-squares slope of
    peak lag against k, which the long lags pin down to a small fraction of a frame.
    """
    ks: list[float] = []
    lags: list[float] = []
    k = 1
    while k * period <= max_lag:
        centre = k * period
        # Search only as far as the period's uncertainty reaches (the coarse grid step at first),
        # and never as far as a neighbouring beat's or subdivision's peak.
        half = min(period / 4, 2.0 + centre * uncertainty)
        lo, hi = int(math.floor(centre - half)), int(math.ceil(centre + half))
        lo, hi = max(lo, 1), min(hi, len(acf) - 2)
        if hi <= lo:
            break
        i = lo + int(np.argmax(acf[lo : hi + 1]))
        if 0 < i < len(acf) - 1:
            a, b, c = acf[i - 1], acf[i], acf[i + 1]
            denom = a - 2 * b + c
            offset = 0.5 * (a - c) / denom if denom < 0 else 0.0
            peak = i + float(np.clip(offset, -0.5, 0.5))
            if b > 0:
                ks.append(k)
                lags.append(peak)
                # Follow the evidence so later, longer lags are searched in the right place.
                k_arr, lag_arr = np.array(ks), np.array(lags)
                period = float((k_arr * lag_arr).sum() / (k_arr**2).sum())
                uncertainty = min(uncertainty, 2.0 / (k * period))
        # Whole bars (k a multiple of 4) repeat the pattern exactly, free of the small offset
        # between, say, a kick's and a snare's flux peak that odd beat lags carry.
        k = k * 2 if k < 4 else k + 4
    return period


def _comb(acf: np.ndarray, period: float, fps: float) -> float:
    """Mean autocorrelation at the multiples of `period` within COMB_SECONDS (at least 4)."""
    count = max(4, int(COMB_SECONDS * fps / period))
    lags = period * np.arange(1, count + 1)
    lags = lags[lags < len(acf) - 1]
    if len(lags) == 0:
        return 0.0
    return float(np.mean(_interp(acf, lags)))


def _tatum(acf_high: np.ndarray, period: float) -> float:
    """Evidence that the high band (hats) subdivides this beat in two: 8ths, not 16ths or beats.

    Most grooves put their fastest regular hat pulse at twice the beat rate, so this separates a
    70 BPM loop with 8th hats (which would be 140 with quarter hats) from a 140 BPM trap loop.
    """
    return float(_interp(acf_high, period / 2) - max(_interp(acf_high, period / 4), 0.0))


def _comb_grid(acf: np.ndarray, periods: np.ndarray, fps: float) -> np.ndarray:
    """`_comb` for many periods at once (one interpolation over a padded lag matrix)."""
    counts = np.maximum(4, (COMB_SECONDS * fps / periods).astype(int))
    multiples = np.arange(1, counts.max() + 1)
    lags = periods[:, None] * multiples[None, :]
    valid = (multiples[None, :] <= counts[:, None]) & (lags < len(acf) - 1)
    values = np.where(valid, _interp(acf, np.where(valid, lags, 0.0)), 0.0)
    return values.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)


def _prior(bpm: float) -> float:
    return math.exp(-0.5 * (math.log2(bpm / PRIOR_CENTER_BPM) / PRIOR_SIGMA_OCTAVES) ** 2)


def _fallback(min_bpm: float, max_bpm: float) -> TempoEstimate:
    bpm = round(min(max(PRIOR_CENTER_BPM, min_bpm), max_bpm), 1)
    return TempoEstimate(bpm=bpm, confidence=0.0, source="estimate", estimated_bpm=bpm)


def _into_range(bpm: float, min_bpm: float, max_bpm: float) -> float:
    """Move `bpm` by octaves into [min_bpm, max_bpm] when one fits there; else leave it."""
    while bpm > max_bpm and bpm / 2 >= min_bpm:
        bpm /= 2
    while bpm < min_bpm and bpm * 2 <= max_bpm:
        bpm *= 2
    return bpm


def estimate_tempo(
    samples: np.ndarray, sample_rate: int, min_bpm: float = 60.0, max_bpm: float = 180.0
) -> TempoEstimate:
    """Estimate the BPM of mono audio, precise to 0.1 BPM, with its octave chosen inside a range.

    The onset envelope (band-wise log spectral flux) of at most MAX_WINDOW_SECONDS from the middle
    of the input is autocorrelated; a strong periodicity is refined to a fraction of a frame from
    its peaks at many multiples of the period. Its binary octaves (x1/4 .. x4) are scored by how
    strongly the envelope repeats at their period, by whether the hats subdivide that beat into
    8ths (or, weighted less, 16ths), and by a log-normal prior around PRIOR_CENTER_BPM; the best
    inside [min_bpm, max_bpm] wins. docs/tempo.md explains the method and its limits.

    Args:
        samples: mono float audio (the 16 kHz analysis signal in the pipeline).
        sample_rate: its rate in Hz.
        min_bpm, max_bpm: the octave is chosen inside this range. A result lies outside it only
            when no octave of the tempo fits inside (a range narrower than an octave).

    Returns:
        A TempoEstimate with source "estimate", `bpm` rounded to 0.1, `confidence` in 0..1 and
        the octave alternatives in `candidates`, best first. Silence, a steady tone, noise or
        input shorter than MIN_SECONDS give confidence near 0 (and, when there is nothing to
        measure, the prior's tempo clamped into the range).

    Raises:
        ValueError: `samples` is empty or not mono, or the range is not positive and ordered.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"estimate_tempo needs mono samples, got shape {x.shape}")
    if x.size == 0:
        raise ValueError("estimate_tempo got no samples")
    if not 0 < min_bpm < max_bpm:
        raise ValueError(f"bad tempo range {min_bpm}-{max_bpm}")
    if len(x) < MIN_SECONDS * sample_rate:
        return _fallback(min_bpm, max_bpm)
    if not np.all(np.isfinite(x)):
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    window = int(MAX_WINDOW_SECONDS * sample_rate)
    if len(x) > window:
        start = (len(x) - window) // 2
        x = x[start : start + window]

    flux = _band_flux(x, sample_rate)
    fps = sample_rate / _stft_sizes(sample_rate)[1]
    envelope = flux.mean(axis=1)
    spread = float(envelope.std()) if envelope.size >= 4 else 0.0
    if spread < MIN_ONSET_SPREAD:
        return _fallback(min_bpm, max_bpm)
    activity = min(1.0, (spread - MIN_ONSET_SPREAD) / (FULL_ONSET_SPREAD - MIN_ONSET_SPREAD))
    acf = _autocorrelation(envelope)
    high = _high_bands(sample_rate)
    acf_high = _autocorrelation(flux[:, high].mean(axis=1)) if high.any() else acf
    if not acf.any():
        return _fallback(min_bpm, max_bpm)

    # A period whose multiples repeat strongly (60-240 BPM) anchors the octave family.
    grid = np.geomspace(SEARCH_MIN_BPM, SEARCH_MAX_BPM, 600)
    strength = _comb_grid(acf, 60.0 * fps / grid, fps)
    # Every multiple of the beat period repeats about as well as the beat itself (3 beats
    # included, which no binary octave of it reaches), so the strongest peak may be a multiple of
    # the beat: take the fastest integer division of it that repeats nearly as strongly.
    strongest = float(grid[int(np.argmax(strength))])
    divisions = strongest * np.arange(1, 9)
    divisions = divisions[divisions <= SEARCH_MAX_BPM * 1.5]
    division_strength = _comb_grid(acf, 60.0 * fps / divisions, fps)
    good = np.flatnonzero(division_strength >= ANCHOR_SHARE * division_strength[0])
    anchor = float(divisions[good.max()])
    max_lag = 0.75 * len(acf)
    period = _refine_period(acf, 60.0 * fps / anchor, max_lag)
    anchor_bpm = 60.0 * fps / period

    candidates: list[_Candidate] = []
    for ratio in OCTAVE_RATIOS:
        bpm = anchor_bpm * ratio
        if not 20.0 <= bpm <= 400.0:
            continue
        comb = _comb(acf, period / ratio, fps)
        tatum = _tatum(acf_high, period / ratio)
        tatum16 = _tatum(acf_high, period / ratio / 2)
        score = (
            max(comb, 1e-3) ** COMB_EXPONENT
            * (0.05 + max(tatum, SIXTEENTH_HAT_WEIGHT * tatum16, 0.0)) ** TATUM_EXPONENT
            * _prior(bpm)
        )
        in_range = min_bpm - 0.05 <= bpm <= max_bpm + 0.05  # what rounds into the range is in it
        candidates.append(_Candidate(bpm, comb, tatum, tatum16, score, in_range))
    candidates.sort(key=lambda c: (not c.in_range, -c.score))
    best = candidates[0]
    bpm = best.bpm if best.in_range else _into_range(best.bpm, min_bpm, max_bpm)

    # How regularly the envelope repeats at the chosen beat, times whether there are onsets at all.
    confidence = float(np.clip((best.comb - 0.05) / 0.45, 0.0, 1.0)) * activity
    rounded = round(bpm, 1)
    by_score = sorted(candidates, key=lambda c: -c.score)
    alternatives = tuple(dict.fromkeys([rounded, *(round(c.bpm, 1) for c in by_score)]))
    return TempoEstimate(
        bpm=rounded,
        confidence=round(confidence, 3),
        source="estimate",
        estimated_bpm=rounded,
        candidates=alternatives,
    )
