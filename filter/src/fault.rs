//! Test-only fault injection (cargo feature `fault-injection`, never in shipped
//! builds): lets the end-to-end suite prove that Envoy fails closed when the VM dies.

use crate::source::RequestSource;

/// Panic when the request carries `x-airlock-fault: panic`.
#[allow(clippy::panic)]
pub fn maybe_panic(src: &dyn RequestSource) {
    if src.header("x-airlock-fault").as_deref() == Some("panic") {
        panic!("airlock fault injection: panic requested by x-airlock-fault");
    }
}
