import CFuzzDriver
import ChorusFuzzTargets
import Foundation

let arguments = CommandLine.arguments
guard arguments.count >= 2, let target = FuzzTargets.all[arguments[1]] else {
    FileHandle.standardError.write(Data("usage: chorus-fuzz TARGET [libFuzzer options] [files or folders]\ntargets: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n".utf8))
    exit(2)
}

// In a fuzzing build libFuzzer takes over here and never returns (fuzz_driver.h).
let status = chorus_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv)
guard status == -1 else { exit(status) }

// A plain build replays inputs: `chorus-fuzz TARGET files-or-folders...` runs each file through the
// target, which is how a crash found by a fuzzing run is reproduced and debugged.
var replayed = 0
for path in arguments.dropFirst(2) where !path.hasPrefix("-") {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
    let files = isDirectory.boolValue
        ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { (path as NSString).appendingPathComponent($0) }
        : [path]
    for file in files {
        guard let data = FileManager.default.contents(atPath: file) else { continue }
        target([UInt8](data))
        replayed += 1
    }
}
print("chorus-fuzz \(arguments[1]): replayed \(replayed) inputs, none crashed (this build has no libFuzzer; scripts/fuzz builds one)")
