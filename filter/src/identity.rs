//! SPIFFE identities (`spiffe://<trust-domain>/ns/<ns>/sa/<sa>`) and Istio principal forms.
