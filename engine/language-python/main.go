// Command pulumi-language-python is ght-socle's own Python language host for the Pulumi CLI.
//
// The CLI runs a Python program (or a CrossGuard policy pack) through a "language host": a gRPC
// server implementing pulumirpc.LanguageRuntimeServer that starts the interpreter. Pulumi's own host
// lives in a Go module the module proxy this project reaches does not serve, so the project builds
// this one from the sdk/v3 module it does serve, at the CLI's version. It does what running the
// project's stacks and policy pack needs and refuses the rest (code generation, packing, linking)
// with an Unimplemented status that names what is missing.
//
// The program itself is run by the Python script pulumi-language-python-exec of the sdk/v3 module,
// which must sit beside this binary: it reads its settings from command-line flags and the stack
// configuration from the environment, connects to the engine and runs the program.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	execScript = "pulumi-language-python-exec"
	// The exec script exits with this code once it has shown the user an actionable error (a Python
	// exception with its traceback): the CLI then stops without adding a message of its own ("bail").
	exitAfterUserMessage = 32
	// How long a program gets to stop after an interrupt before it is killed.
	stopGrace = 5 * time.Second
	// How often the host checks that the engine that started it is still alive.
	engineHealthEvery = 5 * time.Minute
	hostName          = "ght-socle's Python language host"
)

func main() {
	showVersion := flag.Bool("version", false, "print the version and exit")
	tracing := flag.String("tracing", "", "Zipkin-compatible tracing endpoint, passed on to the program")
	executor := flag.String("exec", "", "the program runner script (default: "+execScript+" beside this binary)")
	// -logtostderr and -v, which the CLI adds when it flows its logging to plugins (pulumi --logflow),
	// are defined by the glog package the SDK links in; InitLogging reads them.
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	logging.InitLogging(false, 0, false)

	runner, err := locateRunner(*executor)
	if err != nil {
		cmdutil.Exit(err)
	}
	// The CLI passes the address of its engine service as the only positional argument.
	engineAddress := flag.Arg(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if engineAddress != "" {
		// Stop serving once the engine is gone, instead of lingering as an orphan.
		if err := rpcutil.Healthcheck(ctx, engineAddress, engineHealthEvery, stop); err != nil {
			cmdutil.Exit(fmt.Errorf("could not watch the engine at %s: %w", engineAddress, err))
		}
	}
	cancelServing := make(chan bool)
	go func() {
		<-ctx.Done()
		close(cancelServing)
	}()
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancelServing,
		Init: func(server *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(server, newHost(ctx, runner, engineAddress, *tracing))
			return nil
		},
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not start the language host's gRPC server: %w", err))
	}
	// The CLI reads the port of the server from the first line of the plugin's standard output.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("the language host stopped serving: %w", err))
	}
}

// locateRunner finds the exec script: the one given, else the one installed beside this binary.
func locateRunner(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot tell where this binary is: %w", err)
	}
	// The binary may be reached through a symbolic link (beside the CLI): the script sits beside the real file.
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	runner := filepath.Join(filepath.Dir(self), execScript)
	if _, err := os.Stat(runner); err != nil {
		return "", fmt.Errorf("missing %s beside %s (socle engine build installs both): %w", execScript, self, err)
	}
	return runner, nil
}

type pythonHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	runner        string
	engineAddress string
	tracing       string
	// Ended by the Cancel RPC (the engine cancels the deployment) and when the CLI stops this host:
	// programs and policy packs still running are terminated.
	cancelled context.Context
	cancelAll context.CancelFunc
	shutdown  context.Context
}

func newHost(shutdown context.Context, runner, engineAddress, tracing string) *pythonHost {
	cancelled, cancelAll := context.WithCancel(context.Background())
	return &pythonHost{runner: runner, engineAddress: engineAddress, tracing: tracing,
		cancelled: cancelled, cancelAll: cancelAll, shutdown: shutdown}
}

func unsupported(what string) error {
	return status.Errorf(codes.Unimplemented, "%s does not implement %s: it only runs Python programs and "+
		"policy packs (docs/engine.md)", hostName, what)
}

// pythonOptions reads the runtime options of Pulumi.yaml (or PulumiPolicy.yaml) this host honours.
// Without `virtualenv` the interpreter is $PULUMI_PYTHON_CMD, else python3 (then python) on PATH.
func pythonOptions(info *pulumirpc.ProgramInfo) (toolchain.PythonOptions, error) {
	options := toolchain.PythonOptions{Root: info.GetRootDirectory(), ProgramDir: info.GetProgramDirectory()}
	settings := info.GetOptions().AsMap()
	if value, set := settings["virtualenv"]; set {
		path, ok := value.(string)
		if !ok {
			return options, errors.New("runtime option virtualenv: must be a string (a directory, relative to " +
				"the project)")
		}
		options.Virtualenv = path
	}
	if value, set := settings["toolchain"]; set {
		switch value {
		case "pip":
			options.Toolchain = toolchain.Pip
		case "uv":
			options.Toolchain = toolchain.Uv
		case "poetry":
			options.Toolchain = toolchain.Poetry
		default:
			return options, fmt.Errorf("runtime option toolchain: %v is not one of pip, uv, poetry", value)
		}
	}
	if value, set := settings["typechecker"]; set {
		return options, fmt.Errorf("runtime option typechecker (%v): not supported by %s; "+
			"run the type checker before pulumi", value, hostName)
	}
	return options, nil
}

func (host *pythonHost) interpreter(info *pulumirpc.ProgramInfo) (toolchain.Toolchain, error) {
	if info == nil {
		return nil, errors.New("the request carries no program information")
	}
	options, err := pythonOptions(info)
	if err != nil {
		return nil, err
	}
	return toolchain.ResolveToolchain(options)
}

func (host *pythonHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

// Handshake is how a CLI that attaches to an already running host (PULUMI_DEBUG_LANGUAGES) tells it
// where its engine is; a host the CLI starts gets the address on its command line instead.
func (host *pythonHost) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	if req.GetEngineAddress() == "" {
		return nil, status.Error(codes.InvalidArgument, "handshake without an engine address")
	}
	host.engineAddress = req.GetEngineAddress()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

// GetRequiredPackages names no package: the provider plugins a program uses are installed in the
// plugin cache beforehand (automatic plugin downloads are off), and the engine loads each one when
// the program first registers one of its resources.
func (host *pythonHost) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

// GetRequiredPlugins is the older form of GetRequiredPackages: none either.
func (host *pythonHost) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

// runnerArguments are the flags of the exec script, then the program's entry point and arguments.
func (host *pythonHost) runnerArguments(req *pulumirpc.RunRequest) []string {
	arguments := []string{host.runner}
	flags := [][2]string{
		{"monitor", req.GetMonitorAddress()},
		{"engine", host.engineAddress},
		{"project", req.GetProject()},
		{"root_directory", req.GetInfo().GetRootDirectory()},
		{"stack", req.GetStack()},
		{"pwd", req.GetPwd()},
		{"dry_run", strconv.FormatBool(req.GetDryRun())},
		{"parallel", strconv.Itoa(int(req.GetParallel()))},
		{"tracing", host.tracing},
		{"organization", req.GetOrganization()},
	}
	for _, flag := range flags {
		if flag[1] != "" {
			arguments = append(arguments, "--"+flag[0], flag[1])
		}
	}
	entryPoint := req.GetInfo().GetEntryPoint()
	if entryPoint == "" {
		entryPoint = "."
	}
	arguments = append(arguments, entryPoint)
	return append(arguments, req.GetArgs()...)
}

// configurationEnvironment passes the stack configuration the way the Python SDK reads it: a JSON
// object of all keys, and a JSON list of the keys that hold secrets (so they stay marked secret).
func configurationEnvironment(req *pulumirpc.RunRequest) ([]string, error) {
	config := req.GetConfig()
	if config == nil {
		config = map[string]string{}
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the stack configuration: %w", err)
	}
	secretKeysJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the secret configuration keys: %w", err)
	}
	return []string{"PULUMI_CONFIG=" + string(configJSON), "PULUMI_CONFIG_SECRET_KEYS=" + string(secretKeysJSON)}, nil
}

// environmentOf is the environment a command will run with (nil means this process's own).
func environmentOf(cmd *exec.Cmd) []string {
	if cmd.Env == nil {
		return os.Environ()
	}
	return cmd.Env
}

// runContext is the life of one program run: it ends with the request, on Cancel or at shutdown.
func (host *pythonHost) runContext(request context.Context) (context.Context, context.CancelFunc) {
	running, stop := context.WithCancel(context.Background())
	for _, end := range []context.Context{request, host.cancelled, host.shutdown} {
		context.AfterFunc(end, stop)
	}
	return running, stop
}

// stoppable makes cmd end with its run context, and never outlive this host. The program runs in
// its own process group: the CLI stops a host by interrupting the host's whole group, even while
// the program runs (a preview that failed on a policy violation), and a Python program interrupted
// that way prints a KeyboardInterrupt traceback into the CLI's diagnostics. The host terminates it
// instead, and kills it if it is still there after stopGrace. Should the host be killed first, the
// kernel kills the program with it (Pdeathsig): an orphan would keep the CLI's output pipes open.
// Pdeathsig follows the thread that started the program: callers lock their goroutine to it.
func (host *pythonHost) stoppable(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = stopGrace
}

// Run runs the program once (a preview, an update, a refresh's or a destroy's program run) and says
// how it ended: no error, an error message for the CLI to show, or "bail" when the program already
// showed the user its error.
func (host *pythonHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	if host.engineAddress == "" {
		return nil, status.Error(codes.FailedPrecondition, "no engine address: the CLI passes it when it starts "+
			"this host, or in a Handshake when it attaches to one")
	}
	if req.GetAttachDebugger() {
		return nil, unsupported("attaching a debugger to a program")
	}
	python, err := host.interpreter(req.GetInfo())
	if err != nil {
		return nil, err
	}
	if err := python.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	configuration, err := configurationEnvironment(req)
	if err != nil {
		return nil, err
	}
	running, stopRun := host.runContext(ctx)
	defer stopRun()
	runtime.LockOSThread() // for Pdeathsig, see stoppable
	defer runtime.UnlockOSThread()
	cmd, err := python.Command(running, host.runnerArguments(req)...)
	if err != nil {
		return nil, err
	}
	host.stoppable(cmd)
	cmd.Env = append(environmentOf(cmd), configuration...)
	// The CLI shows what the host writes on its standard output and error as the program's messages.
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Run()
	// A program that dies fast (a bad import) must not lose its last words in a buffer.
	_ = os.Stdout.Sync()
	_ = os.Stderr.Sync()
	var exited *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exited) && exited.ExitCode() == exitAfterUserMessage:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exited) && exited.ExitCode() > 0:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("program exited with non-zero exit code: %d",
			exited.ExitCode())}, nil
	case errors.As(err, &exited):
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("program stopped: %v", exited)}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not start the Python program runner %s with %s: %v",
			host.runner, cmd.Path, err)}, nil
	}
}

// RunPlugin runs a Python policy pack: `python -u -m pulumi.policy <engine> <pack directory>` in the
// pack's directory, its output streamed back to the CLI. The pulumi-policy SDK reads the stack it
// checks from PULUMI_* variables, which the engine only gives in its ConfigureStack call to the
// analyzer: the sdk/v3 policy proxy receives that call first, then the pack is started with them.
func (host *pythonHost) RunPlugin(
	req *pulumirpc.RunPluginRequest, server grpc.ServerStreamingServer[pulumirpc.RunPluginResponse],
) error {
	if req.GetKind() != string(apitype.AnalyzerPlugin) {
		return unsupported(fmt.Sprintf("running a Python %s plugin (only policy packs)", req.GetKind()))
	}
	if req.GetAttachDebugger() {
		return unsupported("attaching a debugger to a policy pack")
	}
	ctx := server.Context()
	python, err := host.interpreter(req.GetInfo())
	if err != nil {
		return err
	}
	packDir := req.GetInfo().GetProgramDirectory()
	arguments := append([]string{"-u", "-m", "pulumi.policy"}, req.GetArgs()...)
	running, stopRun := host.runContext(ctx)
	defer stopRun()
	runtime.LockOSThread() // for Pdeathsig, see stoppable
	defer runtime.UnlockOSThread()
	cmd, err := python.Command(running, append(arguments, packDir)...)
	if err != nil {
		return err
	}
	host.stoppable(cmd)
	cmd.Dir = packDir

	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	proxy, packStdout, err := sdk.NewPolicyProxy(ctx, stdout)
	if err != nil {
		return fmt.Errorf("could not start the policy pack proxy: %w", err)
	}
	stack, err := proxy.AwaitConfiguration(ctx)
	if err != nil {
		return fmt.Errorf("the engine gave no stack configuration for the policy pack: %w", err)
	}
	environment, err := stackEnvironment(stack)
	if err != nil {
		return err
	}
	cmd.Env = append(append(environmentOf(cmd), environment...), req.GetEnv()...)
	cmd.Stdout, cmd.Stderr = packStdout, stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("could not start the policy pack with %s: %w", cmd.Path, err)
	}
	// Attach reads the pack's port, forwards the engine's calls to it and returns when the pack exits.
	if err := proxy.Attach(ctx, cmd); err != nil {
		var exited *exec.ExitError
		if errors.As(err, &exited) {
			return server.Send(&pulumirpc.RunPluginResponse{
				Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(exitCode(exited))},
			})
		}
		return fmt.Errorf("policy pack %s: %w", packDir, err)
	}
	return closer.Close()
}

func exitCode(exited *exec.ExitError) int {
	if waitStatus, ok := exited.Sys().(syscall.WaitStatus); ok && waitStatus.Signaled() {
		return 128 + int(waitStatus.Signal())
	}
	return exited.ExitCode()
}

// stackEnvironment is what the pulumi-policy SDK reads to know the stack under check.
func stackEnvironment(stack *pulumirpc.AnalyzerStackConfigureRequest) ([]string, error) {
	if stack == nil {
		return nil, nil
	}
	var environment []string
	add := func(name, value string) {
		if value != "" {
			environment = append(environment, name+"="+value)
		}
	}
	add("PULUMI_ORGANIZATION", stack.GetOrganization())
	add("PULUMI_PROJECT", stack.GetProject())
	add("PULUMI_STACK", stack.GetStack())
	add("PULUMI_DRY_RUN", strconv.FormatBool(stack.GetDryRun()))
	if stack.GetConfig() != nil {
		configJSON, err := json.Marshal(stack.GetConfig())
		if err != nil {
			return nil, fmt.Errorf("cannot encode the stack configuration for the policy pack: %w", err)
		}
		add("PULUMI_CONFIG", string(configJSON))
	}
	// The secret keys too: the analyzer sees unwrapped values, so a policy that asks "is this input a
	// stack secret?" can only tell by the configuration's secret keys (Pulumi's own host omits them).
	if keys := stack.GetConfigSecretKeys(); len(keys) > 0 {
		keysJSON, err := json.Marshal(keys)
		if err != nil {
			return nil, fmt.Errorf("cannot encode the stack's secret keys for the policy pack: %w", err)
		}
		add("PULUMI_CONFIG_SECRET_KEYS", string(keysJSON))
	}
	return environment, nil
}

// InstallDependencies is `pulumi install`: the virtual environment of the runtime options is created
// when missing, then requirements.txt is installed into it with pip (or uv / poetry when chosen).
func (host *pythonHost) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	python, err := host.interpreter(req.GetInfo())
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.GetIsTerminal())
	if err != nil {
		return err
	}
	defer closer.Close()
	fmt.Fprintf(stdout, "Installing the Python dependencies of %s\n", req.GetInfo().GetProgramDirectory())
	if err := python.InstallDependencies(server.Context(), req.GetInfo().GetProgramDirectory(),
		req.GetUseLanguageVersionTools(), true, stdout, stderr); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Python dependencies installed")
	return closer.Close()
}

// About tells `pulumi about` which interpreter runs the programs.
func (host *pythonHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	info := req.GetInfo()
	if info == nil {
		// An older CLI asks without a program: describe the default interpreter.
		info = &pulumirpc.ProgramInfo{}
	}
	python, err := host.interpreter(info)
	if err != nil {
		return nil, err
	}
	about, err := python.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{
		Executable: about.PythonExecutable,
		Version:    about.PythonVersion.String(),
		Metadata:   map[string]string{"host": hostName, "toolchainVersion": about.ToolchainVersion.String()},
	}, nil
}

// GetProgramDependencies lists the packages installed in the program's interpreter (pip list).
func (host *pythonHost) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	python, err := host.interpreter(req.GetInfo())
	if err != nil {
		return nil, err
	}
	packages, err := python.ListPackages(ctx, req.GetTransitiveDependencies())
	if err != nil {
		return nil, fmt.Errorf("could not list the program's Python packages: %w", err)
	}
	dependencies := make([]*pulumirpc.DependencyInfo, 0, len(packages))
	for _, pkg := range packages {
		dependencies = append(dependencies, &pulumirpc.DependencyInfo{Name: pkg.Name, Version: pkg.Version})
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: dependencies}, nil
}

// Cancel ends every program and policy pack this host is running (the engine cancels the deployment:
// the user's interrupt, a failed preview).
func (host *pythonHost) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	host.cancelAll()
	return &emptypb.Empty{}, nil
}

func (host *pythonHost) RuntimeOptionsPrompts(
	context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	// No question to ask: `pulumi new` then keeps the options the template gives.
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (host *pythonHost) Template(context.Context, *pulumirpc.TemplateRequest) (*pulumirpc.TemplateResponse, error) {
	return nil, unsupported("preparing a template (pulumi new)")
}

func (host *pythonHost) GenerateProgram(
	context.Context, *pulumirpc.GenerateProgramRequest,
) (*pulumirpc.GenerateProgramResponse, error) {
	return nil, unsupported("program generation (pulumi convert)")
}

func (host *pythonHost) GenerateProject(
	context.Context, *pulumirpc.GenerateProjectRequest,
) (*pulumirpc.GenerateProjectResponse, error) {
	return nil, unsupported("project generation (pulumi convert, pulumi import --out)")
}

func (host *pythonHost) GeneratePackage(
	context.Context, *pulumirpc.GeneratePackageRequest,
) (*pulumirpc.GeneratePackageResponse, error) {
	return nil, unsupported("SDK generation (pulumi package gen-sdk, local packages)")
}

func (host *pythonHost) Pack(context.Context, *pulumirpc.PackRequest) (*pulumirpc.PackResponse, error) {
	return nil, unsupported("packing an SDK")
}

func (host *pythonHost) Link(context.Context, *pulumirpc.LinkRequest) (*pulumirpc.LinkResponse, error) {
	return nil, unsupported("linking a local package (pulumi package add)")
}
