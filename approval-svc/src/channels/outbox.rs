//! PLACEHOLDER — being built. Outbox dispatcher.
