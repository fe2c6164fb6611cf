"""Phones with timings from 16 kHz speech, by pocketsphinx's phone-loop decoder and its bundled model.

Pocketsphinx 5 [1]_ ships a US-English acoustic model and a phone bigram (``en-us-phone.lm.bin``); its
``allphone`` mode decodes a phone sequence with 10 ms frame timings without a transcript, which is all
the bilabial check needs. Accuracy on clean read speech is modest (phone error rates of tens of per cent),
so the bilabial mismatch rate is an aggregate over many phones, never a per-phone verdict.

References
----------
.. [1] D. Huggins-Daines et al., "PocketSphinx: A Free, Real-Time Continuous Speech Recognition System
   for Hand-Held Devices", IEEE ICASSP 2006. doi:10.1109/ICASSP.2006.1659988
"""

from __future__ import annotations

import os

import numpy as np

from tamperscope.temporal.bilabial import Phone

SAMPLE_RATE = 16000
FRAME_S = 0.01


def recognise_phones(samples: np.ndarray) -> list[Phone]:
    """Phone segments of 16 kHz mono speech.

    Parameters
    ----------
    samples : numpy.ndarray
        16 kHz mono audio, int16 or float in [-1, 1].

    Returns
    -------
    list of Phone
        Phones in time order, silence (``SIL``) and fillers (``+...+``) removed.
    """
    from pocketsphinx import Decoder, get_model_path

    x = np.asarray(samples)
    if x.dtype != np.int16:
        x = (np.clip(x.astype(np.float64), -1.0, 1.0) * 32767).astype(np.int16)
    if len(x) < SAMPLE_RATE // 10:
        return []
    decoder = Decoder(allphone=os.path.join(get_model_path(), "en-us", "en-us-phone.lm.bin"), lw=2.0, pip=0.3,
                      beam=1e-10, pbeam=1e-10, loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(x.tobytes(), full_utt=True)
    decoder.end_utt()
    phones = []
    for seg in decoder.seg():
        if seg.word == "SIL" or seg.word.startswith("+") or seg.word.startswith("<"):
            continue
        phones.append(Phone(seg.word, seg.start_frame * FRAME_S, (seg.end_frame + 1) * FRAME_S))
    return phones
