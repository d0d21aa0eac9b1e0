"""What the dependency worker reads and decides: the version lines and instrumentation
tables (`lines`), the app's toolchain and lockfiles (`toolchain`), the line and the
instrumentations chosen for the app (`choose`), and the package.json edit (`packagejson`)."""
