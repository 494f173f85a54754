package parallax.magics;

import java.util.stream.Collectors;
import parallax.engine.report.Report;
import picocli.CommandLine.Command;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

@Command(name = "lsmagic", description = "List the available magics: %%name for line magics, %%%%name for cell magics.")
public final class LsMagicCommand extends MagicCommand {

    @Override
    protected Report execute() {
        StringColumn use = StringColumn.create("use");
        StringColumn summary = StringColumn.create("what it does");
        for (Magics.Entry e : context().magics()) {
            String forms = switch (e.kind()) {
                case LINE -> "%" + e.name();
                case CELL -> "%%" + e.name();
                case LINE_AND_CELL -> "%" + e.name() + ", %%" + e.name();
            };
            use.append(forms);
            summary.append(e.summary());
        }
        String lines = context().magics().stream().filter(Magics.Entry::line).map(e -> "%" + e.name()).collect(Collectors.joining(" "));
        String cells = context().magics().stream().filter(Magics.Entry::cell).map(e -> "%%" + e.name()).collect(Collectors.joining(" "));
        return Report.builder("Available magics")
                .text("Line magics: " + lines + "\n\nCell magics: " + cells
                        + "\n\n`%name --help` shows the flags of each.")
                .table(Table.create("magics", use, summary))
                .build();
    }
}
