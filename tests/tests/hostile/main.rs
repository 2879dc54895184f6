//! The hostile suite: each attack class berth has been shown open to, tried
//! as an attacker would against real daemons, real images (made with `berth
//! import` or pushed to the registry), real containers, real plugins and
//! real unprivileged local users. Every test here failed on the tree before
//! its fix; they stay, so that later changes keep these holes closed.
//!
//! One module per class of attacker input. `SECURITY.md` maps each promise
//! berth makes to the tests here that hold it.

mod abandoned;
mod control_auth;
mod cp;
mod devices;
mod joins;
mod layers;
mod local_user;
mod paths;
mod plugins;
mod registry_names;
