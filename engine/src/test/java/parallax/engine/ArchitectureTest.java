package parallax.engine;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The engine's package arrows, checked on the compiled classes (docs/architecture.md):
 * no cycles between packages, the low packages import none of the higher ones, and the
 * engine knows nothing of Jupyter or picocli (the workers' JShell for SPMD cells is the engine's own).
 */
class ArchitectureTest {

    private static JavaClasses engine;

    @BeforeAll
    static void load() {
        engine = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("parallax.engine");
    }

    @Test
    void enginePackagesFormNoCycle() {
        slices().matching("parallax.engine.(*)..").should().beFreeOfCycles().check(engine);
    }

    @Test
    void lowPackagesImportNothingAbove() {
        String[] above = {"..engine.cluster..", "..engine.model..", "..engine.parallel..", "..engine.formats..",
                "..engine.precision..", "..engine.plan.."};
        noClasses().that().resideInAnyPackage("..engine.numerics..", "..engine.report..", "..engine.torch..")
                .should().dependOnClassesThat().resideInAnyPackage(above).check(engine);
    }

    @Test
    void formatsKnowNoModelAndNoTraining() {
        noClasses().that().resideInAPackage("..engine.formats..")
                .should().dependOnClassesThat().resideInAnyPackage("..engine.model..", "..engine.parallel..",
                        "..engine.precision..", "..engine.plan..", "..engine.cluster..")
                .check(engine);
    }

    @Test
    void modelKnowsNoStrategy() {
        noClasses().that().resideInAPackage("..engine.model..")
                .should().dependOnClassesThat().resideInAnyPackage("..engine.parallel..", "..engine.cluster..",
                        "..engine.precision..", "..engine.plan..")
                .check(engine);
    }

    /** libtorch's functions that make a new tensor from nothing (not from another tensor). */
    static final java.util.Set<String> FACTORIES = java.util.Set.of("empty", "empty_strided", "zeros", "ones", "full", "arange",
            "from_blob", "from_file", "rand", "randn", "randint", "randperm", "normal", "eye", "linspace", "logspace", "tensor",
            "scalar_tensor");

    /** Every tensor the engine creates is created on the rank's device, through torch.Device (issue 12). */
    @Test
    void tensorsAreCreatedOnlyThroughTheDeviceLayer() {
        com.tngtech.archunit.base.DescribedPredicate<com.tngtech.archunit.core.domain.JavaMethodCall> factory =
                com.tngtech.archunit.base.DescribedPredicate.describe("a libtorch tensor factory (torch.empty/zeros/from_blob/..., Tensor.create)",
                        c -> {
                            String owner = c.getTargetOwner().getName();
                            return owner.equals("org.bytedeco.pytorch.global.torch") && FACTORIES.contains(c.getName())
                                    || (owner.equals("org.bytedeco.pytorch.AbstractTensor") || owner.equals("org.bytedeco.pytorch.Tensor"))
                                    && c.getName().equals("create");
                        });
        noClasses().that().doNotHaveFullyQualifiedName("parallax.engine.torch.Device")
                .should().callMethodWhere(factory).check(engine);
    }

    @Test
    void engineImportsNeitherJupyterNorPicocli() {
        noClasses().should().dependOnClassesThat().resideInAnyPackage("picocli..", "io.github.spencerpark..")
                .check(engine);
    }
}
