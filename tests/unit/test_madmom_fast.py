import numpy as np
import pytest

from beatsync.analysis import _madmom_fast


@pytest.mark.parametrize("frame_size,fft_size,shift,nyq", [(1024, None, False, False), (2048, None, False, True),
                                                          (4096, 4096, True, False), (1024, 2048, False, False)])
def test_vectorised_stft_equals_madmom(frame_size, fft_size, shift, nyq):
    import madmom.audio.stft as module
    from madmom.audio.signal import FramedSignal, Signal

    original = getattr(module, "_original_stft", module.stft)
    rng = np.random.default_rng(1)
    sig = Signal(rng.normal(0, 0.3, 44100 * 3).astype(np.float32), sample_rate=44100)
    frames = FramedSignal(sig, frame_size=frame_size, fps=100)
    window = np.hanning(frame_size).astype(np.float32)
    ours = _madmom_fast.stft(frames, window, fft_size=fft_size, circular_shift=shift, include_nyquist=nyq)
    theirs = original(frames, window, fft_size=fft_size, circular_shift=shift, include_nyquist=nyq)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())
