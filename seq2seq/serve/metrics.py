"""The server's counters, in the Prometheus text format (``GET /metrics``)."""

from __future__ import annotations

import threading
from collections import Counter

from seq2seq.serve.batching import BatchStats

# upper bounds of the batch-size histogram (requests per decoded batch)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()  # (endpoint, status)
        self.batches = 0
        self.batch_jobs: Counter[int] = Counter()  # histogram bucket -> batches
        self.batch_jobs_sum = 0
        self.queue_s_sum = 0.0
        self.queued_jobs = 0
        self.decode_s_sum = 0.0
        self.texts = 0
        self.source_tokens = 0
        self.output_tokens = 0

    def request(self, endpoint: str, status: int) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1

    def batch(self, stats: BatchStats) -> None:
        with self._lock:
            self.batches += 1
            self.batch_jobs_sum += stats.jobs
            for bound in BATCH_BUCKETS:
                if stats.jobs <= bound:
                    self.batch_jobs[bound] += 1
            self.queue_s_sum += sum(stats.queue_s)
            self.queued_jobs += len(stats.queue_s)
            self.decode_s_sum += stats.decode_s
            self.texts += stats.texts
            self.source_tokens += stats.tokens

    def outputs(self, tokens: int) -> None:
        with self._lock:
            self.output_tokens += tokens

    def render(self, waiting: int) -> str:
        """The exposition text: counters, the batch-size histogram, sums for rates."""
        with self._lock:
            lines = [
                "# HELP seq2seq_requests_total HTTP requests by endpoint and status.",
                "# TYPE seq2seq_requests_total counter",
            ]
            for (endpoint, status), count in sorted(self.requests.items()):
                lines.append(
                    f'seq2seq_requests_total{{endpoint="{endpoint}",status="{status}"}} {count}'
                )
            errors = sum(c for (_, status), c in self.requests.items() if status >= 500)
            lines += [
                "# TYPE seq2seq_errors_total counter",
                f"seq2seq_errors_total {errors}",
                "# HELP seq2seq_batch_requests Requests decoded together per batch.",
                "# TYPE seq2seq_batch_requests histogram",
            ]
            for bound in BATCH_BUCKETS:
                lines.append(
                    f'seq2seq_batch_requests_bucket{{le="{bound}"}} {self.batch_jobs[bound]}'
                )
            lines += [
                f'seq2seq_batch_requests_bucket{{le="+Inf"}} {self.batches}',
                f"seq2seq_batch_requests_sum {self.batch_jobs_sum}",
                f"seq2seq_batch_requests_count {self.batches}",
                "# TYPE seq2seq_queue_seconds summary",
                f"seq2seq_queue_seconds_sum {self.queue_s_sum:.6f}",
                f"seq2seq_queue_seconds_count {self.queued_jobs}",
                "# HELP seq2seq_decode_seconds_total Time spent decoding batches.",
                "# TYPE seq2seq_decode_seconds_total counter",
                f"seq2seq_decode_seconds_total {self.decode_s_sum:.6f}",
                "# TYPE seq2seq_texts_total counter",
                f"seq2seq_texts_total {self.texts}",
                "# TYPE seq2seq_source_tokens_total counter",
                f"seq2seq_source_tokens_total {self.source_tokens}",
                "# HELP seq2seq_output_tokens_total Output tokens; with decode seconds: tokens/s.",
                "# TYPE seq2seq_output_tokens_total counter",
                f"seq2seq_output_tokens_total {self.output_tokens}",
                "# TYPE seq2seq_queue_length gauge",
                f"seq2seq_queue_length {waiting}",
            ]
        return "\n".join(lines) + "\n"
