//! Run supervisors, the store, the HTTP API and metrics.
