//! meshguard-harness (placeholder: filled in by its issue).
