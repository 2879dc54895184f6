//! Authentication and authorisation providers: the [`AuthProvider`] trait and
//! [`export_auth!`](crate::export_auth).

pub use crate::bindings::auth::exports::berth::plugin::auth::{
    Action, AuthnResult, BasicCredentials, Credentials, Decision, Principal, Target,
};

impl Action {
    /// The action's WIT name: `pull`, `push`, `delete`, `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::Admin => "admin",
        }
    }

    /// Parses a WIT action name (as written in configuration files).
    pub fn parse(name: &str) -> Option<Action> {
        match name {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            "admin" => Some(Action::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Principal {
    /// The anonymous principal.
    pub fn anonymous() -> Self {
        Principal {
            name: String::new(),
            groups: Vec::new(),
            anonymous: true,
        }
    }

    /// A named user with groups.
    pub fn user(name: impl Into<String>, groups: Vec<String>) -> Self {
        Principal {
            name: name.into(),
            groups,
            anonymous: false,
        }
    }
}

/// An auth provider. One instance (created with `Default`) serves every call, so it may cache
/// in `RefCell` fields: instances are reused warm.
pub trait AuthProvider {
    /// Turns credentials into a principal, rejects them, or abstains.
    fn authenticate(&self, credentials: Credentials) -> AuthnResult;

    /// Decides whether `who` may do `action` on `what`.
    fn authorize(&self, who: &Principal, action: Action, what: &Target) -> Decision;
}

/// Exports an [`AuthProvider`] type as the plugin's `auth-provider` world.
#[macro_export]
macro_rules! export_auth {
    ($ty:ident) => {
        const _: () = {
            thread_local! {
                static __BERTH_AUTH: $ty = <$ty as ::core::default::Default>::default();
            }


            struct __BerthAuthExport;

            impl $crate::bindings::auth::exports::berth::plugin::auth::Guest for __BerthAuthExport {
                fn authenticate(
                    credentials: $crate::auth::Credentials,
                ) -> $crate::auth::AuthnResult {
                    __BERTH_AUTH.with(|provider| {
                        $crate::auth::AuthProvider::authenticate(provider, credentials)
                    })
                }

                fn authorize(
                    who: $crate::auth::Principal,
                    action: $crate::auth::Action,
                    what: $crate::auth::Target,
                ) -> $crate::auth::Decision {
                    __BERTH_AUTH.with(|provider| {
                        $crate::auth::AuthProvider::authorize(provider, &who, action, &what)
                    })
                }
            }

            // Native builds (unit tests) skip the exports: their wasm symbol names do not link

            // into a native cdylib.

            #[cfg(target_arch = "wasm32")]

            $crate::bindings::auth::__export_auth_world!(
                __BerthAuthExport with_types_in $crate::bindings::auth
            );
            // Natively, keep the plugin type "used" so its code is still type- and
            // lint-checked, and unit tests see no dead-code noise.
            #[cfg(not(target_arch = "wasm32"))]
            const _: () = {
                let _ = <__BerthAuthExport as $crate::bindings::auth::exports::berth::plugin::auth::Guest>::authenticate;
            };
        };
    };
}
