function mpc = tiny
% every reader feature in a few lines
mpc.version = '2';
mpc.baseMVA = 10;
mpc.bus = [ %% kW
	1	3	0	0	0	0	1	1	0	12.66	1	Inf	-Inf;
	2, 1, 100, 60, 0, 0, 1, 1, 0, 12.66, 1, 1.1, 0.9 ...
	; 3 1 90 40 0 0 1 1 0 12.66 1 1.1 0.9
];
mpc.gen = [ 1 0 0 10 -10 1 100 1 10 0 NaN ];
mpc.branch = [
	1	2	0.0922	0.0470	0	0	0	0	0	0	1	-360	360;
	2	3	0.4930	0.2511	0	Inf	0	0	0	0	1	-360	360;
];
mpc.gencost = [ 2 0 0 3 0 20 0 ];
mpc.bus_name = { 'a'; 'b''c'; "d" };
mpc.areas = [1 2; 3 4];
mpc.note = 'skip [me]';
[PQ, PV, REF, NONE, BUS_I, BUS_TYPE, PD, QD] = idx_bus;
[F_BUS, T_BUS, BR_R, BR_X] = idx_brch;
[GEN_BUS, PG, ~, QMAX] = idx_gen;
Vbase = mpc.bus(1, 10) * 1e3;
Sbase = mpc.baseMVA * 1e6;
mpc.branch(:, [BR_R BR_X]) = mpc.branch(:, [BR_R BR_X]) / (Vbase^2 / Sbase);
mpc.bus(:, [PD, QD]) = mpc.bus(:, [PD, QD]) / 1e3;
mpc.gen(:, QMAX) = -mpc.gen(:, QMAX) .^ 2 + 2^-1 * (3 - 1);
