"""CUDA graphs for the fused training step: one graph replay per batch instead of ~30 launches.

A small MLP's step on a GPU is bound by kernel-launch latency, not arithmetic: each of its
~30 kernels runs for microseconds. ``GraphedStep`` captures the whole step (forward, loss,
backward and the optimizer's update, see search.engine.fused and search.engine.optim) once,
reading the batch from static buffers, and replays it for every full batch. Following
PyTorch's recipe (https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs) the first steps
run eagerly on a side stream; they are real training steps, and the captured graph replays the
same kernels, so the numbers are the eager step's. A partial last batch runs eagerly. If
capture fails (an operation that synchronises with the host, say), the fit carries on eagerly
and ``fallback_reason`` says why.
"""

from __future__ import annotations

import torch

from search.engine.fused import FusedMLPStep

WARMUP_STEPS = 3  # eager steps before capture: lets cuBLAS and the allocator settle


class GraphedStep:
    """Call it as the fused step: ``step(xb, yb)`` with xb, yb views of the static buffers."""

    def __init__(self, fused: FusedMLPStep, buffers: tuple[torch.Tensor, torch.Tensor]) -> None:
        self.fused, (self.xbuf, self.ybuf) = fused, buffers
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_loss: torch.Tensor | None = None
        self.eager_calls = 0
        self.replays = 0
        self.fallback_reason: str | None = None
        self.side = torch.cuda.Stream(device=self.xbuf.device)

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def _is_static_batch(self, xb: torch.Tensor) -> bool:
        return len(xb) == len(self.xbuf) and xb.data_ptr() == self.xbuf.data_ptr()

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        if self.fallback_reason is not None or not self._is_static_batch(xb):
            return self.fused.step(xb, yb)
        if self.graph is None and self.eager_calls < WARMUP_STEPS:
            self.eager_calls += 1
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                loss = self.fused.step(xb, yb)
            torch.cuda.current_stream().wait_stream(self.side)
            return loss
        if self.graph is None and not self._capture():
            return self.fused.step(xb, yb)
        self.graph.replay()
        self.replays += 1
        self.fused.opt.steps += 1  # the graph advanced the device-side count; keep ours level
        return self.static_loss

    def _capture(self) -> bool:
        """Record one step without running it; False (and eager from now on) if it fails."""
        steps = self.fused.opt.steps
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.static_loss = self.fused.step(self.xbuf, self.ybuf)
        except RuntimeError as e:  # an operation that cannot be captured
            self.fallback_reason = f"{type(e).__name__}: {str(e).splitlines()[0]}"
            self.static_loss = None
            torch.cuda.synchronize()
            return False
        finally:
            self.fused.opt.steps = steps  # capture ran nothing: no step was taken
        self.graph = graph
        return True
