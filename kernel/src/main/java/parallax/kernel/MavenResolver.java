package parallax.kernel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.maven.settings.Mirror;
import org.apache.maven.settings.Profile;
import org.apache.maven.settings.Server;
import org.apache.maven.settings.Settings;
import org.apache.maven.settings.building.DefaultSettingsBuilderFactory;
import org.apache.maven.settings.building.DefaultSettingsBuildingRequest;
import org.apache.maven.settings.building.SettingsBuildingException;
import org.eclipse.aether.RepositorySystem;
import org.eclipse.aether.RepositorySystemSession;
import org.eclipse.aether.artifact.Artifact;
import org.eclipse.aether.artifact.DefaultArtifact;
import org.eclipse.aether.collection.CollectRequest;
import org.eclipse.aether.graph.Dependency;
import org.eclipse.aether.graph.DependencyNode;
import org.eclipse.aether.repository.Proxy;
import org.eclipse.aether.repository.RemoteRepository;
import org.eclipse.aether.repository.RepositoryPolicy;
import org.eclipse.aether.resolution.ArtifactResult;
import org.eclipse.aether.resolution.DependencyRequest;
import org.eclipse.aether.resolution.DependencyResult;
import org.eclipse.aether.supplier.RepositorySystemSupplier;
import org.eclipse.aether.supplier.SessionBuilderSupplier;
import org.eclipse.aether.transfer.ArtifactNotFoundException;
import org.eclipse.aether.transfer.ArtifactTransferException;
import org.eclipse.aether.transfer.RepositoryOfflineException;
import org.eclipse.aether.util.artifact.JavaScopes;
import org.eclipse.aether.util.filter.DependencyFilterUtils;
import org.eclipse.aether.util.repository.AuthenticationBuilder;
import org.eclipse.aether.util.repository.DefaultAuthenticationSelector;
import org.eclipse.aether.util.repository.DefaultMirrorSelector;
import org.eclipse.aether.util.repository.DefaultProxySelector;
import parallax.engine.UserError;

/**
 * Maven coordinates to jars, with Maven's own resolver: transitive dependencies by Maven's
 * rules (docs/reference.md#maven-dependency-scopes: nearest version wins, test and provided
 * dependencies of dependencies left out),
 * the user's settings.xml (local repository, offline, mirrors, proxies, server
 * credentials, repositories of active profiles) and the local repository Maven itself uses,
 * so what Maven downloaded before is not downloaded again.
 *
 * <p>The settings file is {@code $PARALLAX_MAVEN_SETTINGS} when set (tests point it at a
 * settings.xml of their own), else {@code ~/.m2/settings.xml}; Maven's global settings
 * ({@code $MAVEN_HOME/conf/settings.xml}) come underneath when {@code MAVEN_HOME} is set.
 */
final class MavenResolver implements AutoCloseable {

    static final String CENTRAL_URL = "https://repo.maven.apache.org/maven2/";

    /** One jar on the resolved class path; {@code direct} when it was asked for by name. */
    record Jar(String groupId, String artifactId, String version, String classifier, Path path, boolean direct) {
        String coordinates() {
            return groupId + ":" + artifactId + (classifier.isEmpty() ? "" : ":" + classifier) + ":" + version;
        }
    }

    private final Path userSettings;
    private RepositorySystem system;

    MavenResolver(Path userSettings) {
        this.userSettings = userSettings;
    }

    /** The resolver for this kernel: settings from PARALLAX_MAVEN_SETTINGS or ~/.m2/settings.xml. */
    static MavenResolver forUser() {
        String env = System.getenv("PARALLAX_MAVEN_SETTINGS");
        Path settings = env != null && !env.isBlank() ? Path.of(env)
                : Path.of(System.getProperty("user.home"), ".m2", "settings.xml");
        return new MavenResolver(settings);
    }

    /**
     * A dependency from Maven's short form {@code group:artifact[:extension[:classifier]]:version}
     * in {@code scope}; a malformed one is a {@link UserError} naming it.
     */
    static Dependency dependency(String coordinates, String scope) {
        try {
            return new Dependency(new DefaultArtifact(coordinates.strip()), scope);
        } catch (IllegalArgumentException e) {
            throw new UserError("'" + coordinates + "' is not a Maven coordinate: write group:artifact:version,"
                    + " e.g. org.apache.commons:commons-lang3:3.17.0");
        }
    }

    /**
     * A remote repository from {@code --repository}: a URL, or {@code id=URL} to give it the id
     * that settings.xml's mirrors and server credentials refer to.
     */
    static RemoteRepository repository(String spec, int index) {
        String id = "repo" + index;
        String url = spec.strip();
        int eq = url.indexOf('=');
        if (eq > 0 && !url.substring(0, eq).contains(":")) {
            id = url.substring(0, eq);
            url = url.substring(eq + 1);
        }
        if (!url.matches("(?i)(https?|file)://.+")) {
            throw new UserError("--repository '" + spec + "' is not a URL: use https://..., http://... or file:///...");
        }
        if (!url.endsWith("/")) url = url + "/";
        return new RemoteRepository.Builder(id, "default", url).build();
    }

    /**
     * Resolves {@code dependencies} and their dependencies (compile and runtime scope) from
     * central, the active profiles' repositories and {@code extra}; offline when asked or when
     * settings.xml says so. Every failure is one {@link UserError} line naming the artifact
     * and where it was looked for.
     */
    List<Jar> resolve(List<Dependency> dependencies, List<RemoteRepository> extra, boolean offline) {
        Settings settings = settings();
        Path localRepo = localRepository(settings);
        boolean off = offline || settings.isOffline();
        RepositorySystem sys = system();
        List<RemoteRepository> repositories = new ArrayList<>();
        repositories.add(new RemoteRepository.Builder("central", "default", CENTRAL_URL)
                .setSnapshotPolicy(new RepositoryPolicy(false, RepositoryPolicy.UPDATE_POLICY_NEVER, RepositoryPolicy.CHECKSUM_POLICY_WARN))
                .build());
        repositories.addAll(profileRepositories(settings));
        repositories.addAll(extra);
        try (RepositorySystemSession.CloseableSession session = new SessionBuilderSupplier(sys).get()
                .withLocalRepositoryBaseDirectories(localRepo)
                .setOffline(off)
                .setMirrorSelector(mirrors(settings))
                .setProxySelector(proxies(settings))
                .setAuthenticationSelector(credentials(settings))
                .setSystemProperties(System.getProperties())
                // Resolver 2 first downloads each repository's list of group prefixes; a mirror
                // or proxy that refuses it costs a round trip per %maven and a failure offline.
                .setConfigProperty("aether.remoteRepositoryFilter.prefixes", false)
                .build()) {
            List<RemoteRepository> effective = sys.newResolutionRepositories(session, repositories);
            CollectRequest collect = new CollectRequest();
            collect.setDependencies(dependencies);
            collect.setRepositories(effective);
            DependencyRequest request = new DependencyRequest(collect,
                    DependencyFilterUtils.classpathFilter(JavaScopes.COMPILE, JavaScopes.RUNTIME, JavaScopes.SYSTEM));
            DependencyResult result;
            try {
                result = sys.resolveDependencies(session, request);
            } catch (Exception e) {
                throw failure(e, effective, localRepo, off);
            }
            Set<String> direct = new LinkedHashSet<>();
            for (DependencyNode child : result.getRoot().getChildren()) {
                if (child.getArtifact() != null) direct.add(key(child.getArtifact()));
            }
            List<Jar> jars = new ArrayList<>();
            for (ArtifactResult r : result.getArtifactResults()) {
                Artifact a = r.getArtifact();
                if (a == null || a.getPath() == null) continue;
                if (!"jar".equals(a.getExtension())) continue;
                jars.add(new Jar(a.getGroupId(), a.getArtifactId(), a.getVersion(), a.getClassifier(), a.getPath(),
                        direct.contains(key(a))));
            }
            return jars;
        }
    }

    private static String key(Artifact a) {
        return a.getGroupId() + ":" + a.getArtifactId() + ":" + a.getClassifier();
    }

    /** The one line a failed resolution becomes: which artifact, where it was looked for, why. */
    static UserError failure(Exception e, List<RemoteRepository> repositories, Path localRepo, boolean offline) {
        ArtifactTransferException transfer = null;
        Throwable t = e;
        while (t != null) {
            for (Throwable s : t.getSuppressed()) {
                if (transfer == null && find(s) != null) transfer = find(s);
            }
            if (t instanceof ArtifactTransferException ate) transfer = ate;
            t = t.getCause();
        }
        String where = repositories.stream().map(r -> r.getId() + " (" + r.getUrl() + ")").collect(Collectors.joining(", "));
        if (transfer == null) {
            String msg = e.getMessage() == null ? e.toString() : e.getMessage();
            return new UserError(msg.lines().findFirst().orElse(msg) + " (repositories: " + where + ")");
        }
        String artifact = shortName(transfer.getArtifact());
        if (offline || hasCause(transfer, RepositoryOfflineException.class)) {
            return new UserError(artifact + " is not in the local repository " + localRepo
                    + " and offline mode cannot download it from " + where);
        }
        if (transfer instanceof ArtifactNotFoundException) {
            return new UserError(artifact + " was not found in " + where + " nor in the local repository " + localRepo);
        }
        Throwable root = transfer;
        while (root.getCause() != null) root = root.getCause();
        String why = root.getMessage() == null ? root.getClass().getSimpleName() : root.getMessage();
        return new UserError("could not download " + artifact + " from " + where + ": "
                + why.lines().findFirst().orElse(why));
    }

    private static ArtifactTransferException find(Throwable t) {
        while (t != null) {
            if (t instanceof ArtifactTransferException ate) return ate;
            t = t.getCause();
        }
        return null;
    }

    private static boolean hasCause(Throwable t, Class<? extends Throwable> type) {
        while (t != null) {
            if (type.isInstance(t)) return true;
            t = t.getCause();
        }
        return false;
    }

    private static String shortName(Artifact a) {
        if (a == null) return "an artifact";
        String ext = "jar".equals(a.getExtension()) ? "" : " (" + a.getExtension() + ")";
        return a.getGroupId() + ":" + a.getArtifactId() + (a.getClassifier().isEmpty() ? "" : ":" + a.getClassifier())
                + ":" + a.getVersion() + ext;
    }

    /**
     * Builds the resolver's components and reads the settings once, without resolving
     * anything, so the first {@code %maven} does not pay for it (run while the kernel is idle).
     */
    void warmUp() {
        Settings settings = settings();
        RepositorySystem sys = system();
        new SessionBuilderSupplier(sys).get().withLocalRepositoryBaseDirectories(localRepository(settings)).build().close();
    }

    private synchronized RepositorySystem system() {
        if (system == null) system = new RepositorySystemSupplier().get();
        return system;
    }

    /** The user's (and global) settings; an unreadable settings.xml is one line naming it. */
    Settings settings() {
        DefaultSettingsBuildingRequest request = new DefaultSettingsBuildingRequest();
        if (Files.isRegularFile(userSettings)) request.setUserSettingsFile(userSettings.toFile());
        String mavenHome = System.getenv("MAVEN_HOME");
        if (mavenHome != null && !mavenHome.isBlank()) {
            Path global = Path.of(mavenHome, "conf", "settings.xml");
            if (Files.isRegularFile(global)) request.setGlobalSettingsFile(global.toFile());
        }
        request.setSystemProperties(System.getProperties());
        try {
            return new DefaultSettingsBuilderFactory().newInstance().build(request).getEffectiveSettings();
        } catch (SettingsBuildingException e) {
            String first = e.getProblems().isEmpty() ? e.getMessage() : e.getProblems().get(0).getMessage()
                    + " (" + e.getProblems().get(0).getLocation() + ")";
            throw new UserError("cannot read Maven settings " + userSettings + ": " + first);
        }
    }

    /** settings.xml's localRepository, else -Dmaven.repo.local, else ~/.m2/repository (Maven's order). */
    static Path localRepository(Settings settings) {
        String fromProperty = System.getProperty("maven.repo.local");
        if (fromProperty != null && !fromProperty.isBlank()) return Path.of(fromProperty);
        if (settings.getLocalRepository() != null && !settings.getLocalRepository().isBlank()) {
            return Path.of(settings.getLocalRepository());
        }
        return Path.of(System.getProperty("user.home"), ".m2", "repository");
    }

    private static List<RemoteRepository> profileRepositories(Settings settings) {
        List<RemoteRepository> out = new ArrayList<>();
        for (Profile p : settings.getProfiles()) {
            boolean active = settings.getActiveProfiles().contains(p.getId())
                    || p.getActivation() != null && p.getActivation().isActiveByDefault();
            if (!active) continue;
            for (org.apache.maven.settings.Repository r : p.getRepositories()) {
                out.add(new RemoteRepository.Builder(r.getId(), r.getLayout() == null ? "default" : r.getLayout(), r.getUrl()).build());
            }
        }
        return out;
    }

    private static DefaultMirrorSelector mirrors(Settings settings) {
        DefaultMirrorSelector selector = new DefaultMirrorSelector();
        for (Mirror m : settings.getMirrors()) {
            selector.add(m.getId(), m.getUrl(), m.getLayout(), false, m.isBlocked(), m.getMirrorOf(), m.getMirrorOfLayouts());
        }
        return selector;
    }

    private static DefaultProxySelector proxies(Settings settings) {
        DefaultProxySelector selector = new DefaultProxySelector();
        for (org.apache.maven.settings.Proxy p : settings.getProxies()) {
            if (!p.isActive()) continue;
            AuthenticationBuilder auth = new AuthenticationBuilder();
            if (p.getUsername() != null) auth.addUsername(p.getUsername()).addPassword(p.getPassword());
            selector.add(new Proxy(p.getProtocol().toLowerCase(Locale.ROOT), p.getHost(), p.getPort(), auth.build()),
                    p.getNonProxyHosts());
        }
        return selector;
    }

    private static DefaultAuthenticationSelector credentials(Settings settings) {
        DefaultAuthenticationSelector selector = new DefaultAuthenticationSelector();
        for (Server s : settings.getServers()) {
            AuthenticationBuilder auth = new AuthenticationBuilder();
            if (s.getUsername() != null) auth.addUsername(s.getUsername());
            if (s.getPassword() != null) auth.addPassword(s.getPassword());
            if (s.getPrivateKey() != null) auth.addPrivateKey(s.getPrivateKey(), s.getPassphrase());
            selector.add(s.getId(), auth.build());
        }
        return selector;
    }

    @Override
    public synchronized void close() {
        if (system != null) system.shutdown();
        system = null;
    }
}
