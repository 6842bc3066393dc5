//! Local fakes of the services the chat channels talk to.

pub mod slack;
pub mod teams;
pub mod webhook;
