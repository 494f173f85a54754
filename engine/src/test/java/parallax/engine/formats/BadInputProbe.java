package parallax.engine.formats;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import parallax.engine.UserError;
import parallax.engine.report.Progress;

/**
 * Run in a separate JVM with a small heap by {@link BadInputTest}: converts every file
 * under a directory and prints one line per file: {@code ERR<TAB>file<TAB>message},
 * {@code OK<TAB>file} (accepted, which the test reports) or {@code BUG<TAB>file<TAB>exception}.
 */
public final class BadInputProbe {

    public static void main(String[] args) throws Exception {
        Path in = Path.of(args[0]);
        Path out = Path.of(args[1]);
        List<Path> files;
        try (Stream<Path> s = Files.walk(in)) {
            files = s.filter(Files::isRegularFile).filter(p -> !p.getFileName().toString().endsWith(".data")).sorted().toList();
        }
        int i = 0;
        for (Path f : files) {
            String dst = (i++ % 2 == 0) ? ".safetensors" : ".gguf";
            Path target = out.resolve(f.getParent().getFileName() + "-" + f.getFileName() + dst);
            try {
                Converter.convert(f, target, Converter.Options.defaults(), Progress.NONE);
                System.out.println("OK\t" + f);
            } catch (UserError e) {
                System.out.println("ERR\t" + f + "\t" + e.getMessage().replace("\n", "\\n"));
            } catch (Throwable t) {
                System.out.println("BUG\t" + f + "\t" + t.toString().replace("\n", "\\n"));
            }
        }
        System.out.println("DONE\t" + files.size() + "\t" + Runtime.getRuntime().maxMemory());
    }
}
