//! Image references and repository names, as users, archives and registry
//! URLs give them: parsing never panics, and what parses prints back to a
//! string that parses to the same reference (berth stores and compares the
//! printed form).
#![no_main]

use berth_oci::{Digest, Reference, validate_repository, validate_tag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = s.parse::<Reference>() {
        let printed = r.to_string();
        let again: Reference = match printed.parse() {
            Ok(a) => a,
            Err(e) => panic!("{s:?} parsed, but its printed form {printed:?} does not: {e}"),
        };
        assert_eq!(again, r, "{s:?} printed as {printed:?}");
        assert!(validate_repository(&r.repository).is_ok());
        if let Some(t) = &r.tag {
            assert!(validate_tag(t).is_ok());
        }
        let _ = (r.object(), r.name(), r.api_host());
    }
    if validate_repository(s).is_ok() {
        // A valid name is never a path that climbs or a URL part.
        assert!(!s.split('/').any(|c| c.is_empty() || c == "." || c == ".."));
        assert!(!s.contains(['%', '?', '#', '\\']));
    }
    if let Ok(d) = s.parse::<Digest>() {
        assert_eq!(d.to_string().parse::<Digest>().ok(), Some(d.clone()));
    }
});
