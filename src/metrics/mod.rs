//! Prometheus metrics (`GET /metrics` on `LATCHKEY_METRICS_BIND` only).
