fn main() {
    std::process::exit(meshshift::run(std::env::args_os()));
}
