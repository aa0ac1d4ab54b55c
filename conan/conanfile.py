# Conan recipe mirroring the CMake options, for users who build Outpost outside Debian.
# The project's own builds use Debian's packages (./dev); this file is kept in step with
# CMakeLists.txt's options and dependencies.
from conan import ConanFile
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout


class OutpostConan(ConanFile):
    name = "outpost"
    version = "0.1.0"
    license = "Proprietary"
    description = "Plugin-based service engine for network and infrastructure monitoring"
    settings = "os", "compiler", "build_type", "arch"
    options = {"werror": [True, False], "sanitize": [True, False], "tests": [True, False],
               "bench": [True, False]}
    default_options = {"werror": False, "sanitize": False, "tests": False, "bench": False}
    exports_sources = "CMakeLists.txt", "cmake/*", "core/*", "sdk/*", "plugins/*", "examples/*", "tests/*", "bench/*"

    def requirements(self):
        self.requires("boost/1.83.0")
        self.requires("yaml-cpp/0.8.0")
        self.requires("fmt/10.2.1")
        self.requires("sqlite3/3.45.0")
        self.requires("openssl/3.2.1")
        if self.options.tests:
            self.requires("catch2/2.13.10")

    def layout(self):
        cmake_layout(self)

    def generate(self):
        tc = CMakeToolchain(self)
        tc.variables["OUTPOST_WERROR"] = self.options.werror
        tc.variables["OUTPOST_SANITIZE"] = self.options.sanitize
        tc.variables["OUTPOST_BUILD_TESTS"] = self.options.tests
        tc.variables["OUTPOST_BUILD_BENCH"] = self.options.bench
        tc.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        CMake(self).install()
