//! TEMPORARY STUB (replaced by the real module)
pub struct Cgroups;
pub struct Limits { pub memory_bytes: Option<u64>, pub max_processes: Option<u64> }
impl Cgroups {
    pub fn detect() -> Result<Cgroups, String> { Err("stub".into()) }
    pub fn create_case(&self, _name: &str, _limits: &Limits) -> std::io::Result<CaseCgroup> { unimplemented!() }
}
pub struct CaseCgroup;
impl CaseCgroup {
    pub fn join_from_pre_exec(&self) -> std::io::Result<()> { Ok(()) }
    pub fn kill_all(&self) -> std::io::Result<usize> { Ok(0) }
    pub fn pids(&self) -> Vec<i32> { vec![] }
    pub fn cpu_time(&self) -> std::io::Result<std::time::Duration> { Ok(Default::default()) }
    pub fn memory_limit_hit(&self) -> bool { false }
    pub fn process_limit_hit(&self) -> bool { false }
    pub fn memory_peak(&self) -> Option<u64> { None }
}
