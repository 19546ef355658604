import ChorusTensor
import Foundation

/// OpenBLAS chooses its kernels once, when the library loads, from OPENBLAS_CORETYPE or the CPU's model
/// number. When it did not recognise the CPU and fell back to a generic kernel, or chose one wider than
/// `CHORUS_CPU` allows, the only way to another is to start again with the variable set: the process is
/// replaced by itself (same pid, arguments and open files) before anything else has run.
enum KernelChoice {
    static func restartForTheChosenKernel() {
        let environment = ProcessInfo.processInfo.environment
        guard let better = BLASInfo.replacement, environment[BLASInfo.replacedVariable] == nil else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)
        setenv(BLASInfo.replacedVariable, "\(BLASInfo.kernel) \(better)", 1)
        let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", arguments)
        // Only reached when exec failed (no /proc): carry on with the generic kernel, and say so.
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv(BLASInfo.replacedVariable)
        FileHandle.standardError.write(Data("chorus: could not restart with OPENBLAS_CORETYPE=\(better) (errno \(errno)); running OpenBLAS's \(BLASInfo.kernel) kernel\n".utf8))
    }

    /// The environment as the user gave it, without what `restartForTheChosenKernel` added: for benchmark peers, whose
    /// own BLAS (numpy's newer OpenBLAS, PyTorch's MKL) makes its own choice. A chorus child restarts itself.
    static var originalEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        if environment.removeValue(forKey: BLASInfo.replacedVariable) != nil {
            environment.removeValue(forKey: "OPENBLAS_CORETYPE")
        }
        return environment
    }
}
