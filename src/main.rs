use clap::Parser;

fn main() -> std::process::ExitCode {
    sockgrade::cli::main(sockgrade::cli::Cli::parse())
}
