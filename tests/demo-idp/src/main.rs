//! meshguard-demo-idp (placeholder: filled in by its issue).
fn main() {}
