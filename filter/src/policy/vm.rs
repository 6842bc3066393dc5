//! The filter's engine, set up in one place: regorus RVM bytecode with the settings that
//! make it fail closed. The gateway (`Policy`) and the authoring tools (`airlock policy
//! test|eval|check`) both build their VM here, so a policy author's test runs exactly
//! what traffic runs.

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::RegoVM;
use regorus::{Engine, Value};
use std::sync::Arc;

/// Compile `entrypoints` of the modules loaded in `engine` to bytecode, in a VM that
/// holds `data` and stops after `max_instructions`.
///
/// Builtin errors are strict: OPA's default turns `to_number("abc")` into undefined,
/// which lets a later rule decide as if the value were absent. Here an error ends the
/// evaluation, and the gateway denies every error.
pub fn build(
    engine: &mut Engine,
    entrypoints: &[&str],
    data: Value,
    max_instructions: usize,
) -> Result<(RegoVM, Arc<Program>), String> {
    let first = entrypoints.first().ok_or_else(|| "no entrypoint to compile".to_string())?;
    let entry: regorus::Rc<str> = (*first).into();
    let compiled =
        engine.compile_with_entrypoint(&entry).map_err(|e| format!("entrypoint `{first}` does not compile: {e}"))?;
    let program: Arc<Program> = Compiler::compile_from_policy(&compiled, entrypoints)
        .map_err(|e| format!("entrypoint `{first}` cannot be compiled to bytecode: {e}"))?;
    let mut vm = RegoVM::new_with_policy(compiled);
    vm.load_program(program.clone());
    vm.set_data(data).map_err(|e| format!("policy data rejected by the VM: {e}"))?;
    vm.set_max_instructions(max_instructions);
    vm.set_strict_builtin_errors(true);
    for name in entrypoints {
        if !vm.get_entry_point_names().iter().any(|n| n == name) {
            return Err(format!("policy entrypoint `{name}` is not defined by any module"));
        }
    }
    Ok((vm, program))
}
