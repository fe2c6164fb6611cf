"""Generated media with known ground truth, in one place, for the demo, the tests and the benchmarks.

Everything is made here from ffmpeg ``lavfi`` sources, scikit-image's bundled sample photographs and Debian's
``espeak-ng``, so no third-party media is needed: ``demo`` (a two-shot video, a camera-like JPEG and its edited
copy), ``shots`` (videos with known cuts and dissolves), ``talking_head`` (an animated face with known blinks, pose
and audio offset) and ``forgeries`` (the synthetic forgery benchmark with exact masks).
"""
