import Foundation

/// With CHORUS_EXIT_WITH_PARENT=1 in its environment (test harnesses and `chorus up` set it), a service or
/// gateway exits when the process that started it is gone, so a test run or a `chorus up` that ends without
/// stopping its servers does not leave them behind.
enum ParentWatch {
    static func startIfAsked() {
        guard ProcessInfo.processInfo.environment["CHORUS_EXIT_WITH_PARENT"] == "1" else { return }
        let parent = getppid()
        let thread = Thread {
            while true {
                Thread.sleep(forTimeInterval: 1)
                if getppid() != parent { exit(0) }
            }
        }
        thread.start()
    }
}
