import ChorusTensor
import Foundation
import Testing

/// The chorus binary never serves on OpenBLAS's generic kernel when the CPU runs a better one, and keeps
/// whatever the environment chose.
@Suite struct BLASKernelProcessTests {
    @Test func aServiceRunsTheReplacementKernelWhenOpenBLASFellBack() async throws {
        let (process, _) = try await ChorusProcess.serve(["speech", "--port", "0"])
        defer { process.signal(SIGKILL) }
        let line = try await process.waitForLine(containing: "OpenBLAS kernel ")
        let kernel = line.components(separatedBy: "OpenBLAS kernel ").last?.split(separator: ";").first.map(String.init) ?? ""
        // This test process runs the environment's kernel as OpenBLAS chose it; the service must run the
        // replacement when there is one, and the same kernel otherwise.
        if let replacement = BLASInfo.replacement {
            #expect(kernel == replacement, "\(line)")
            #expect(process.log.contains("chorus started itself again with OPENBLAS_CORETYPE=\(replacement)"), "\(process.log)")
        } else {
            #expect(kernel == BLASInfo.kernel, "\(line)")
            #expect(!process.log.contains("started itself again"), "\(process.log)")
        }
        #expect(!process.log.contains("run several times slower"), "\(process.log)")  // the advice a generic kernel gets
    }
}
