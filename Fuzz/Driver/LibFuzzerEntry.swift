import ChorusFuzzTargets
import Foundation

/// libFuzzer's side of chorus-fuzz (Fuzz/CFuzzDriver/include/fuzz_driver.h says how it is reached).
enum LibFuzzerEntry {
    nonisolated(unsafe) static var target: FuzzTargets.Target?
}

/// Picks the target named by the first argument and takes it off the arguments, which libFuzzer would
/// otherwise read as a corpus folder.
@_cdecl("chorus_fuzz_select")
public func selectFuzzTarget(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let arguments = argv.pointee, argc.pointee >= 2, let raw = arguments[1], let target = FuzzTargets.all[String(cString: raw)] else {
        FileHandle.standardError.write(Data("usage: chorus-fuzz TARGET [libFuzzer options] [corpus folders]\ntargets: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n".utf8))
        exit(2)
    }
    LibFuzzerEntry.target = target
    for i in 1..<Int(argc.pointee) { arguments[i] = arguments[i + 1] }
    argc.pointee -= 1
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    LibFuzzerEntry.target?(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
