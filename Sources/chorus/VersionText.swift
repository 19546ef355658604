import ChorusServiceKit
import ChorusTensor

/// What `chorus --version` prints: the release, the commit it was built from, and what it runs on this machine
/// (the CPU, the instruction sets its kernels chose, OpenBLAS's kernel), the first things to ask for in a bug report.
enum VersionText {
    static var text: String {
        """
        chorus \(ServiceRuntime.version) (commit \(ServiceRuntime.commit))
        cpu: \(cpuName())
        kernels: \(VectorMath.features)
        openblas: \(BLASInfo.kernel) kernel, \(BLASInfo.configuration); \(BLASInfo.threading)
        """
    }
}
